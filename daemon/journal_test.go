package daemon

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// fakeJournal records what journalCore sends in place of the journal's
// socket; refuse makes it fail every send, as a journald that went away.
type fakeJournal struct {
	sent   []sentEntry
	refuse bool
}

type sentEntry struct {
	msg  string
	pri  journal.Priority
	vars map[string]string
}

func (f *fakeJournal) send(msg string, p journal.Priority, vars map[string]string) error {
	if f.refuse {
		return errors.New("journal socket: connection refused")
	}
	f.sent = append(f.sent, sentEntry{msg, p, vars})
	return nil
}

// Each level goes to the journal at its priority, with the entry's
// fields (and its logger's) as journal fields, and a MESSAGE that reads
// as the console line does without time and level.
func TestJournalCoreFields(t *testing.T) {
	var fake fakeJournal
	var stderr bytes.Buffer
	log := zap.New(newJournalCore(zapcore.DebugLevel, fake.send, &stderr))
	child := log.With(zap.String("group", "web"), zap.String("tag", "httpd"), zap.Int("pid", 4242))
	child.Info("listening on :80")
	log.Named("cluster").Warn("fencing", zap.String("node", "n2"), zap.String("why", "silent"))
	log.Error("cltab invalid", zap.Strings("errors", []string{"cltab:3: bad mode"}))
	log.Debug("probe", zap.Duration("after", 1500e6))

	if stderr.Len() != 0 {
		t.Errorf("stderr written while the journal takes every entry: %q", stderr.String())
	}
	want := []struct {
		pri  journal.Priority
		msg  string
		vars map[string]string
	}{
		{journal.PriInfo, `listening on :80	{"group": "web", "tag": "httpd", "pid": 4242}`,
			map[string]string{"GROUP": "web", "TAG": "httpd", "PID": "4242", "SYSLOG_IDENTIFIER": "clinit"}},
		{journal.PriWarning, `cluster	fencing	{"node": "n2", "why": "silent"}`,
			map[string]string{"NODE": "n2", "WHY": "silent", "LOGGER": "cluster", "SYSLOG_IDENTIFIER": "clinit"}},
		{journal.PriErr, `cltab invalid	{"errors": ["cltab:3: bad mode"]}`,
			map[string]string{"ERRORS": `["cltab:3: bad mode"]`, "SYSLOG_IDENTIFIER": "clinit"}},
		{journal.PriDebug, `probe	{"after": 1.5}`,
			map[string]string{"AFTER": "1.5s", "SYSLOG_IDENTIFIER": "clinit"}},
	}
	if len(fake.sent) != len(want) {
		t.Fatalf("sent %d entries, want %d: %+v", len(fake.sent), len(want), fake.sent)
	}
	for i, w := range want {
		got := fake.sent[i]
		if got.pri != w.pri || got.msg != w.msg {
			t.Errorf("entry %d: priority %d message %q, want %d %q", i, got.pri, got.msg, w.pri, w.msg)
		}
		if len(got.vars) != len(w.vars) {
			t.Errorf("entry %d: fields %v, want %v", i, got.vars, w.vars)
		}
		for k, v := range w.vars {
			if got.vars[k] != v {
				t.Errorf("entry %d: %s=%q, want %q (all: %v)", i, k, got.vars[k], v, got.vars)
			}
		}
	}
}

// An entry the journal refuses is not lost: it goes to stderr, which
// journald reads as a stream, with the `<N>` prefix of its priority.
func TestJournalCoreFallsBackToPrefixes(t *testing.T) {
	fake := fakeJournal{refuse: true}
	var stderr bytes.Buffer
	log := zap.New(newJournalCore(zapcore.InfoLevel, fake.send, &stderr))
	log.Warn("web respawning too rapidly", zap.String("group", "web"))
	log.Info("ready")
	log.Debug("not at info level")
	want := "<4>web respawning too rapidly\t{\"group\": \"web\"}\n<6>ready\n"
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}

// Without a usable socket at all, every entry takes the `<N>` form.
func TestPrefixCore(t *testing.T) {
	var stderr bytes.Buffer
	log := zap.New(newPrefixCore(zapcore.InfoLevel, &stderr))
	log.Error("socket server", zap.Error(errors.New("closed")))
	log.Info("two\nlines")
	want := "<3>socket server\t{\"error\": \"closed\"}\n<6>two\n<6>lines\n"
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}

func TestJournalFieldNames(t *testing.T) {
	for key, want := range map[string]string{
		"group":                 "GROUP",
		"node_state":            "NODE_STATE",
		"throttled-until":       "THROTTLED_UNTIL",
		"_pid":                  "PID",
		"message":               "CLINIT_MESSAGE",
		"priority":              "CLINIT_PRIORITY",
		"syslog_identifier":     "CLINIT_SYSLOG_IDENTIFIER",
		"code_file":             "CLINIT_CODE_FILE",
		"9lives":                "CLINIT_9LIVES",
		"___":                   "",
		"":                      "",
		strings.Repeat("x", 70): strings.Repeat("X", 64),
	} {
		if got := journalField(key); got != want {
			t.Errorf("journalField(%q) = %q, want %q", key, got, want)
		}
	}
}
