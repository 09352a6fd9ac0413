package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap/zapcore"
)

// Under systemd the daemon's stderr is a stream into the journal
// (JOURNAL_STREAM names it): each entry then goes to the journal's native
// socket, with its priority and its fields as journal fields, so that
// `journalctl -p warning` and `journalctl GROUP=web` work. When that
// socket cannot be used, entries go to stderr with the `<N>` priority
// prefix that journald reads on a stream (sd-daemon(3)).

// journalIdentifier is SYSLOG_IDENTIFIER of every entry: what
// `journalctl -t clinit` selects.
const journalIdentifier = "clinit"

// journalSink sends one entry to the journal; journal.Send in the
// daemon, a recorder in the unit tests.
type journalSink func(msg string, p journal.Priority, vars map[string]string) error

// underJournal reports whether stderr is the journal's stream
// (JOURNAL_STREAM set and naming stderr's device and inode). A malformed
// JOURNAL_STREAM is returned as an error, for a warning.
func underJournal() (bool, error) { return journal.StderrIsJournalStream() }

// priority is the journal priority of a zap level.
func priority(l zapcore.Level) journal.Priority {
	switch {
	case l <= zapcore.DebugLevel:
		return journal.PriDebug
	case l == zapcore.InfoLevel:
		return journal.PriInfo
	case l == zapcore.WarnLevel:
		return journal.PriWarning
	case l == zapcore.ErrorLevel:
		return journal.PriErr
	default: // DPanic, Panic, Fatal
		return journal.PriCrit
	}
}

// journalEncoder renders an entry for the journal: the journal keeps its
// own time and priority, so neither is in the text.
func journalEncoder() zapcore.Encoder {
	enc := encoderConfig()
	enc.TimeKey = ""
	enc.LevelKey = ""
	return zapcore.NewConsoleEncoder(enc)
}

// journalCore is a zapcore.Core that writes to the journal. MESSAGE is
// the entry as the console shows it, fields included, less time and
// level; every field is also a journal field of its name in upper case
// (group -> GROUP, tag -> TAG, node -> NODE, pid -> PID). An entry the
// journal refuses goes to fallback (stderr) with its `<N>` prefix.
type journalCore struct {
	zapcore.LevelEnabler
	enc      zapcore.Encoder
	fields   []zapcore.Field // from With, in order
	send     journalSink     // nil: the socket is unusable, every entry goes to fallback
	fallback *prefixWriter
}

func newJournalCore(level zapcore.LevelEnabler, send journalSink, fallback io.Writer) *journalCore {
	return &journalCore{LevelEnabler: level, enc: journalEncoder(), send: send, fallback: &prefixWriter{w: fallback}}
}

func (c *journalCore) With(fields []zapcore.Field) zapcore.Core {
	clone := *c
	clone.enc = c.enc.Clone()
	for _, f := range fields {
		f.AddTo(clone.enc)
	}
	clone.fields = append(append([]zapcore.Field{}, c.fields...), fields...)
	return &clone
}

func (c *journalCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *journalCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	e.Time = e.Time.UTC() // not shown; keeps the encoder's output stable
	buf, err := c.enc.EncodeEntry(e, fields)
	if err != nil {
		return err
	}
	text := strings.TrimSuffix(buf.String(), "\n")
	buf.Free()
	p := priority(e.Level)
	if c.send != nil {
		if err := c.send(text, p, c.vars(e, fields)); err == nil {
			return nil
		}
	}
	return c.fallback.write(p, text)
}

func (c *journalCore) Sync() error { return nil }

// vars are the journal fields of an entry: its zap fields (With's, then
// its own, a later one winning), under names the journal accepts.
func (c *journalCore) vars(e zapcore.Entry, fields []zapcore.Field) map[string]string {
	m := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(m)
	}
	for _, f := range fields {
		f.AddTo(m)
	}
	vars := make(map[string]string, len(m.Fields)+2)
	for k, v := range m.Fields {
		if name := journalField(k); name != "" {
			vars[name] = fieldText(v)
		}
	}
	vars["SYSLOG_IDENTIFIER"] = journalIdentifier
	if e.LoggerName != "" {
		vars["LOGGER"] = e.LoggerName
	}
	return vars
}

// journalField is the journal's name for a zap key: upper case, anything
// but letters, digits and _ made _, no leading _ (those are the
// journal's trusted fields), none of the names the protocol or journald
// give a meaning of their own. "" when nothing is left of it.
func journalField(key string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(key) {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := strings.TrimLeft(b.String(), "_")
	switch {
	case name == "":
		return ""
	case name == "MESSAGE", name == "PRIORITY", name == "LOGGER", strings.HasPrefix(name, "SYSLOG_"),
		strings.HasPrefix(name, "CODE_"), strings.HasPrefix(name, "MESSAGE_"), name[0] >= '0' && name[0] <= '9':
		return "CLINIT_" + name
	}
	if len(name) > 64 { // journald's limit on a field name
		name = name[:64]
	}
	return name
}

// fieldText is a field's value as journal text: strings as they are,
// everything else as JSON.
func fieldText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case fmt.Stringer:
		return v.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// prefixWriter writes entries to a stream journald reads, each line with
// the `<N>` prefix of its priority (sd-daemon(3): SD_ERR is "<3>").
type prefixWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *prefixWriter) write(pri journal.Priority, text string) error {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		fmt.Fprintf(&b, "<%d>%s\n", pri, line)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := io.WriteString(p.w, b.String())
	return err
}

// newPrefixCore is the `<N>` form alone: the journal's stream is stderr
// but its socket does not answer.
func newPrefixCore(level zapcore.LevelEnabler, w io.Writer) *journalCore {
	return newJournalCore(level, nil, w)
}
