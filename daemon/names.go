package daemon

import "github.com/clinit/clinit/cltab"

// BadNames checks names given as kind, name pairs by cltab's one rule
// and returns the message for the first bad one ("" when all are good):
// whatever a request names lands in clstat, hastat and the log.
func BadNames(kindName ...string) string {
	for i := 0; i+1 < len(kindName); i += 2 {
		if msg := cltab.BadName(kindName[i], kindName[i+1]); msg != "" {
			return msg
		}
	}
	return ""
}
