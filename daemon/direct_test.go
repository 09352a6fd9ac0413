package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/internal/reaper"
)

// TestMain lets this test binary stand in for a service started by the
// spawner: with CLINIT_TAG=dump, it writes its arguments and environment
// (but the last) to the file its last argument names, and exits 3.
func TestMain(m *testing.M) {
	if os.Getenv("CLINIT_TAG") == "dump" {
		file := os.Args[len(os.Args)-1]
		env := os.Environ()
		slices.Sort(env)
		text := strings.Join(os.Args[1:len(os.Args)-1], " ") + "\n" + strings.Join(env, "\n") + "\n"
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			os.Exit(1)
		}
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func TestDirectWords(t *testing.T) {
	for _, c := range []struct {
		cmd  string
		want []string // nil: through sh
	}{
		{"/usr/sbin/sshd -D", []string{"/usr/sbin/sshd", "-D"}},
		{"exec stamp /tmp/x hold", []string{"stamp", "/tmp/x", "hold"}},
		{"  sleep\t10  ", []string{"sleep", "10"}},
		{"prog --opt=1 a,b user@host 50% +x", []string{"prog", "--opt=1", "a,b", "user@host", "50%", "+x"}},
		{"", nil},
		{"exec", nil},
		{"exec -a name prog", nil}, // bash's exec options: sh's business
		{"FOO=1 prog", nil},        // an assignment
		{"echo hi", nil},           // builtins and keywords
		{"true", nil},
		{"exec true", nil},
		{"[ -f x ]", nil},
		{"if", nil},
		{"prog >out", nil},
		{"prog; other", nil},
		{"prog | other", nil},
		{"prog &", nil},
		{"prog $HOME", nil},
		{"prog 'a b'", nil},
		{`prog "a"`, nil},
		{`prog a\ b`, nil},
		{"prog *.txt", nil},
		{"prog ?", nil},
		{"prog ~/x", nil},
		{"prog # comment", nil},
		{"prog `x`", nil},
		{"prog (x)", nil},
		{"prog {a,b}", nil},
		{"prog !x", nil},
		{"prog\nother", nil},
		{"prog é", nil},
	} {
		if got := directWords(c.cmd); !slices.Equal(got, c.want) {
			t.Errorf("directWords(%q) = %q, want %q", c.cmd, got, c.want)
		}
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	write := func(path string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(a, "prog"), 0o644) // not executable: sh passes it over
	write(filepath.Join(b, "prog"), 0o755)
	write(filepath.Join(a, "sub", "x"), 0o755) // a directory: passed over
	write(filepath.Join(b, "sub"), 0o755)
	env := []string{"HOME=/", "PATH=" + a + ":" + b}
	for name, want := range map[string]string{
		"prog":    filepath.Join(b, "prog"),
		"sub":     filepath.Join(b, "sub"),
		"nothere": "",
		"./x/y":   "./x/y", // a path: as it is
	} {
		if got := lookPath(name, env); got != want {
			t.Errorf("lookPath(%q) = %q, want %q", name, got, want)
		}
	}
	if got := lookPath("sh", []string{"HOME=/"}); got == "" {
		t.Errorf("lookPath(sh) without PATH found nothing: dash's default path has /bin")
	}
}

// How each kind of command starts: plain words directly, the rest (and
// a program not found) through sh, and under the exit wrapper when the
// status is to be kept.
func TestSpawnCommand(t *testing.T) {
	s := &spawner{env: []string{"PATH=/usr/bin:/bin"}}
	sleep := lookPath("sleep", s.env)
	if sleep == "" {
		t.Fatal("no sleep in /usr/bin or /bin")
	}
	for _, c := range []struct {
		cmd, exitFile string
		argv          []string
		path          string
	}{
		{"exec sleep 5", "", []string{"sleep", "5"}, sleep},
		{"/bin/sleep 5", "", []string{"/bin/sleep", "5"}, "/bin/sleep"},
		{"sleep 5 >/dev/null", "", []string{"/bin/sh", "-c", "sleep 5 >/dev/null"}, ""},
		{"clinit-no-such-program", "", []string{"/bin/sh", "-c", "clinit-no-such-program"}, ""},
		{"sleep 5", "/x/exit", []string{"/bin/sh", "-c", exitWrapperWords, "clinit-t", "/x/exit", "sleep", "5"}, ""},
		{"sleep 5; true", "/x/exit", []string{"/bin/sh", "-c", exitWrapper, "clinit-t", "sleep 5; true", "/x/exit"}, ""},
	} {
		argv, path := s.command(&cltab.Entry{Tag: "t", Command: c.cmd}, c.exitFile)
		if !slices.Equal(argv, c.argv) || path != c.path {
			t.Errorf("command(%q, %q) = %q, %q; want %q, %q", c.cmd, c.exitFile, argv, path, c.argv, c.path)
		}
	}
}

// spawnWait starts command as entry "dump" of group g and returns its
// exit status.
func spawnWait(t *testing.T, command, exitFile string) int {
	t.Helper()
	s, err := newSpawner("n1", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan *reaper.Exit, 1)
	ent := &cltab.Entry{Group: "g", Tag: "dump", Mode: cltab.ModeOnce, Command: command}
	if _, _, err := s.spawn(ent, "1", exitFile, "", func(x *reaper.Exit) { exited <- x }); err != nil {
		t.Fatal(err)
	}
	s.readOutput()
	select {
	case x := <-exited:
		return x.Status.ExitStatus()
	case <-time.After(30 * time.Second):
		t.Fatalf("%q did not exit", command)
		return 0
	}
}

// A program started directly has the arguments, environment and exit
// status that sh would have given it, with or without the exit wrapper.
func TestSpawnDirectAsShell(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if directWords(self) == nil {
		t.Fatalf("the test binary's path %q is not plain words: run the tests from a plain directory", self)
	}
	dir := t.TempDir()
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	run := func(command, out, exitFile string) string {
		t.Helper()
		if code := spawnWait(t, command+" a --b=c "+filepath.Join(dir, out), exitFile); code != 3 {
			t.Errorf("%s exited %d, want 3", command, code)
		}
		return read(out)
	}
	shell := run("exec '"+self+"'", "shell", "") // quoted: through sh
	if direct := run(self, "direct", ""); direct != shell {
		t.Errorf("started directly:\n%s\nthrough sh:\n%s", direct, shell)
	}
	exitFile := filepath.Join(dir, "exit")
	if wrapped := run(self, "wrapped", exitFile); wrapped != shell {
		t.Errorf("under the exit wrapper:\n%s\nthrough sh:\n%s", wrapped, shell)
	}
	if got := strings.TrimSpace(read("exit")); got != "3" {
		t.Errorf("exit file holds %q, want 3", got)
	}
}

// An executable file without #! cannot be executed by the kernel: sh
// runs it as a script, and so it still is. A program not found exits 127,
// as sh has it.
func TestSpawnDirectFallsBack(t *testing.T) {
	dir := t.TempDir()
	script, out := filepath.Join(dir, "script"), filepath.Join(dir, "out")
	if err := os.WriteFile(script, []byte("echo $CLINIT_GROUP >\"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if code := spawnWait(t, script+" "+out, ""); code != 0 {
		t.Errorf("script exited %d", code)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "g\n" {
		t.Errorf("script wrote %q, %v; want \"g\\n\"", b, err)
	}
	if code := spawnWait(t, "clinit-no-such-program "+strconv.Itoa(1), ""); code != 127 {
		t.Errorf("a program not found exited %d, want 127", code)
	}
}
