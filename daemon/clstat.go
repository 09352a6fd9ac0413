package daemon

import (
	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/internal/atomicfile"
)

// writeClstat replaces the clstat file with st.
func (e *Engine) writeClstat(st api.Status) {
	if err := atomicfile.WriteStatus(e.cfg.Clstat, []byte(st.Clstat()), 0o644); err != nil {
		e.log.Error("writing clstat", zap.String("path", e.cfg.Clstat), zap.Error(err))
	}
}
