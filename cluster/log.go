package cluster

import (
	"bytes"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
)

// logWriter turns memberlist's log lines ("[WARN] memberlist: ...") into
// zap entries at the matching level.
type logWriter struct{ log *zap.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	// Drop the standard logger's date and time: zap has its own.
	if i := bytes.IndexByte(line, '['); i > 0 {
		line = line[i:]
	}
	// memberlist writes the names peers gave into its lines as they are.
	msg := api.Printable(string(bytes.TrimPrefix(line[bytes.IndexByte(line, ']')+1:], []byte(" memberlist: "))))
	switch {
	case bytes.HasPrefix(line, []byte("[DEBUG]")):
		w.log.Debug(msg)
	case bytes.HasPrefix(line, []byte("[INFO]")):
		w.log.Info(msg)
	case bytes.HasPrefix(line, []byte("[WARN]")):
		w.log.Warn(msg)
	case bytes.HasPrefix(line, []byte("[ERR]")):
		w.log.Error(msg)
	default:
		w.log.Info(api.Printable(string(line)))
	}
	return len(p), nil
}
