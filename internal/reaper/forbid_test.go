package reaper

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Outside this package, product code neither starts a process nor waits
// for one: no os/exec, nothing that yields an *os.Process (so no
// Process.Wait), no fork, no wait syscall. t/ and bench/ are test
// tooling, run beside the daemon and never inside it, and keep os/exec.
//
// A bare .Wait() call is not flagged, as sync.WaitGroup has one too: a
// process's Wait needs an *os.Process or an exec.Cmd, both forbidden.
var forbidden = map[string]map[string]bool{
	"os": {"StartProcess": true, "FindProcess": true, "Process": true, "ProcessState": true, "ProcAttr": true},
	"syscall": {"Wait4": true, "ForkExec": true, "StartProcess": true, "SYS_WAIT4": true, "SYS_WAITID": true,
		"SYS_FORK": true, "SYS_VFORK": true, "SYS_CLONE": true, "SYS_CLONE3": true},
	"golang.org/x/sys/unix": {"Wait4": true, "Waitid": true, "SYS_WAIT4": true, "SYS_WAITID": true,
		"SYS_FORK": true, "SYS_VFORK": true, "SYS_CLONE": true, "SYS_CLONE3": true},
}

// exempt are the directories of the module not checked: this package,
// and the test tooling (internal/testkit launches the daemons of t/ and
// bench as the operator would).
var exempt = []string{"internal/reaper", "internal/testkit", "t", "bench"}

func TestNoWaitOutsideTheReaper(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	checked := 0
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || exempted(rel)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		for _, p := range violations(fset, f) {
			t.Errorf("%s:%s (start and wait through internal/reaper)", rel, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("only %d files checked under %s", checked, root)
	}
}

func exempted(rel string) bool {
	rel = filepath.ToSlash(rel)
	for _, e := range exempt {
		if rel == e {
			return true
		}
	}
	return false
}

// violations lists, as "LINE: what", the forbidden uses in f.
func violations(fset *token.FileSet, f *ast.File) []string {
	var out []string
	at := func(n ast.Node, what string) {
		out = append(out, strconv.Itoa(fset.Position(n.Pos()).Line)+": "+what)
	}
	names := map[string]string{} // local name -> import path
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if path == "os/exec" {
			at(imp, "imports os/exec")
		}
		name := path[strings.LastIndexByte(path, '/')+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = path
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && forbidden[names[id.Name]][n.Sel.Name] {
				at(n, "uses "+names[id.Name]+"."+n.Sel.Name)
			}
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Wait4" || sel.Sel.Name == "Waitid") {
				at(n, "calls "+sel.Sel.Name)
			}
		}
		return true
	})
	return out
}

// The check finds what it is for: a checker that finds nothing passes
// any tree.
func TestViolationsFound(t *testing.T) {
	src := `package x
import (
	"os/exec"
	"os"
	sys "golang.org/x/sys/unix"
	"sync"
)
func f(p *os.Process, w *sync.WaitGroup) {
	exec.Command("x").Run()
	p.Wait()
	os.StartProcess("x", nil, nil)
	var ws sys.WaitStatus
	sys.Wait4(-1, &ws, 0, nil)
	(*os.Process).Wait(p)
	w.Wait()
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(violations(fset, f), "\n")
	want := strings.Join([]string{
		"3: imports os/exec",
		"8: uses os.Process",
		"11: uses os.StartProcess",
		"13: calls Wait4",
		"13: uses golang.org/x/sys/unix.Wait4",
		"14: uses os.Process",
	}, "\n")
	if got != want {
		t.Errorf("found:\n%s\nwant:\n%s", got, want)
	}
}
