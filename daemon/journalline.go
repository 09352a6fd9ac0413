package daemon

import (
	"encoding/json"
	"strconv"
)

// appendJSON appends the journal line's JSON, byte for byte what
// json.Marshal gives (TestJournalLineJSON): a line is written at every
// start, and encoding/json's reflection was a twentieth of the daemon's
// CPU when 1,000 entries start (perf).
func (jl *journalLine) appendJSON(b []byte) []byte {
	p := &jl.Proc
	b = append(b, `{"group":`...)
	b = appendJSONString(b, jl.Group)
	b = append(b, `,"proc":{"tag":`...)
	b = appendJSONString(b, p.Tag)
	b = append(b, `,"mode":`...)
	b = appendJSONString(b, string(p.Mode))
	b = append(b, `,"hash":`...)
	b = appendJSONString(b, p.Hash)
	if p.Pid != 0 {
		b = strconv.AppendInt(append(b, `,"pid":`...), int64(p.Pid), 10)
	}
	if p.Start != 0 {
		b = strconv.AppendUint(append(b, `,"start":`...), p.Start, 10)
	}
	b = strconv.AppendInt(append(b, `,"run":`...), int64(p.Run), 10)
	b = strconv.AppendInt(append(b, `,"epoch":`...), int64(p.Epoch), 10)
	if !p.Started.IsZero() {
		t, err := p.Started.MarshalJSON()
		if err != nil { // a year outside 0-9999: as json.Marshal, no line
			return nil
		}
		b = append(append(b, `,"started":`...), t...)
	}
	if p.Restarts != 0 {
		b = strconv.AppendInt(append(b, `,"restarts":`...), int64(p.Restarts), 10)
	}
	if p.Exited {
		b = append(b, `,"exited":true`...)
	}
	if p.Exit != 0 {
		b = strconv.AppendInt(append(b, `,"exit":`...), int64(p.Exit), 10)
	}
	if p.Retiring {
		b = append(b, `,"retiring":true`...)
	}
	if p.Fifo != "" {
		b = appendJSONString(append(b, `,"fifo":`...), p.Fifo)
	}
	if len(p.Residues) > 0 {
		b = append(b, `,"residues":[`...)
		for i, r := range p.Residues {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(r), 10)
		}
		b = append(b, ']')
	}
	if p.Linger {
		b = append(b, `,"linger":true`...)
	}
	return append(b, "}}"...)
}

// appendJSONString appends s as encoding/json quotes it: as it is when
// it is printable ASCII without a quote, a backslash or one of the
// characters json escapes for HTML; through encoding/json otherwise.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}
