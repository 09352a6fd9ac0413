package man

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/cpuguy83/go-md2man/v2/md2man"

	"github.com/clinit/clinit/cli"
)

var pages = map[string]string{"clinit.8.md": "clinit 8", "cltab.5.md": "cltab 5", "hactl.5.md": "hactl 5"}

func TestPagesRender(t *testing.T) {
	for file, th := range pages {
		md, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		roff := string(md2man.Render(md))
		if !strings.Contains(roff, ".TH "+th+" ") {
			t.Errorf("%s: no .TH %s header in:\n%.300s", file, th, roff)
		}
		for _, sec := range []string{"NAME", "DESCRIPTION", "SEE ALSO"} {
			if !strings.Contains(roff, ".SH "+sec) {
				t.Errorf("%s: no %s section", file, sec)
			}
		}
	}
}

// Every flag clinit -h lists is documented in clinit(8), in bold.
func TestEveryFlagDocumented(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := cli.Run([]string{"-h"}, &out, &errOut); code != 0 {
		t.Fatalf("clinit -h: %d %s", code, errOut.String())
	}
	page, err := os.ReadFile("clinit.8.md")
	if err != nil {
		t.Fatal(err)
	}
	flags := regexp.MustCompile(`(?m)^\s+(?:(-[a-z]), )?(--[a-z-]+)`).FindAllStringSubmatch(out.String(), -1)
	if len(flags) < 20 {
		t.Fatalf("found only %d flags in clinit -h:\n%s", len(flags), out.String())
	}
	for _, f := range flags {
		for _, name := range f[1:] {
			if name != "" && !bytes.Contains(page, []byte("**"+name+"**")) {
				t.Errorf("clinit(8) does not document %s", name)
			}
		}
	}
}
