package cltab

import "fmt"

// crossCheck finds settings that are each valid but cannot work
// together, once every line is read: an error at the line to fix, or a
// warning for what works but is unsafe.
func (p *parser) crossCheck() {
	set := p.tab.Settings
	nodes, hasNodes := set["nodes"]
	quorum, hasQuorum := set["quorum"]
	if hasNodes && hasQuorum && p.tab.Int("quorum", 0) > p.tab.Int("nodes", 0) {
		p.errorf(quorum.Line, "quorum %s is more than nodes %s (line %d): no node could ever see a quorum, and HA groups would run nowhere",
			quorum.Value, nodes.Value, nodes.Line)
	}
	if w, ok := set["witness"]; ok {
		p.checkWitness(w)
	}
	if !hasNodes && !hasQuorum {
		return // HA is off: fencetime means nothing
	}
	stop := p.tab.Duration("stoptimeout", DefaultStopTimeout)
	fence := p.tab.Duration("fencetime", DefaultFenceTime)
	if stop < fence {
		return
	}
	// The line to change: stoptimeout's, else fencetime's, else the one
	// that turned HA on.
	at := nodes.Line
	for _, name := range []string{"quorum", "fencetime", "stoptimeout"} {
		if s, ok := set[name]; ok && (name != "quorum" || !hasNodes) {
			at = s.Line
		}
	}
	p.tab.Warnings = append(p.tab.Warnings, &Error{Path: p.path, Line: at, Msg: fmt.Sprintf(
		"warning: stoptimeout %v is not below fencetime %v: a node that lost quorum may still be stopping its HA groups when another node starts them; set stoptimeout below fencetime",
		stop, fence)})
}

// checkWitness: a witness must vote (be one of :::servers:, where that
// is set), and cannot be every voter: someone must run the groups.
func (p *parser) checkWitness(w Setting) {
	witness := SplitNames(w.Value)
	servers, ok := p.tab.Settings["servers"]
	if !ok {
		return
	}
	voters := map[string]bool{}
	for _, n := range SplitNames(servers.Value) {
		voters[n] = true
	}
	for _, n := range witness {
		if !voters[n] {
			p.errorf(w.Line, "witness %s is not one of the servers (line %d): a witness is a voter that holds no HA group", n, servers.Line)
		}
	}
}
