package cluster

import (
	"fmt"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"

	"github.com/clinit/clinit/cltab"
)

// Every name that comes from another node goes through cltab's one name
// rule: a member called "n1\nnode fake alive" forged hastat lines, one
// with a space split its fields and the stomith argument, one with
// "\xff" was seen by every node as a different member. A member with a
// bad name is not let in; a status or file message naming one is dropped.

// NotifyAlive is memberlist's AliveDelegate: an error keeps the member
// out (memberlist logs it, by way of logWriter). It is called with
// memberlist's lock held, and only looks at the name.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	if err := cltab.CheckName(n.Name); err != nil {
		return fmt.Errorf("bad node name: %v", err)
	}
	return nil
}

// checkStatus checks the names a status carries.
func checkStatus(s nodeStatus) error {
	if err := cltab.CheckName(s.Node); err != nil {
		return fmt.Errorf("bad node name %q: %v", s.Node, err)
	}
	for _, g := range s.Groups {
		for _, name := range []string{g.Group, g.Level, g.State} {
			if err := cltab.CheckName(name); err != nil {
				return fmt.Errorf("node %s: bad group, level or state %q: %v", s.Node, name, err)
			}
		}
	}
	for g := range s.Bad {
		if err := cltab.CheckName(g); err != nil {
			return fmt.Errorf("node %s: bad group name %q: %v", s.Node, g, err)
		}
	}
	return nil
}

// goodStatus reports whether s may be taken, logging why not.
func (c *Cluster) goodStatus(s nodeStatus) bool {
	if err := checkStatus(s); err != nil {
		c.log.Warn("status with a bad name: ignored", zap.Error(err))
		return false
	}
	return true
}
