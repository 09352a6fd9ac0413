package netbed

import (
	"fmt"
	"strings"
)

// Link control happens in the switch namespace, on the switch's end of
// each host's veth, so a host's own view of its network never changes
// (as with a cable pulled or a switch misbehaving, not a host
// reconfigured).
//
// Cut sets the port down (the host sees no carrier). Split and Loss drop
// packets silently at the port's egress, towards the host: the port gets
// an htb qdisc with two classes, 1:1 where everything goes by default and
// 1:2 whose queue holds nothing (pfifo limit 0), so whatever a filter
// sends there is dropped. A split is u32 filters (priority 10) matching
// the other side's source addresses; loss is netem on 1:1 when the kernel
// has it, and otherwise a classic BPF filter (priority 20) that sends a
// random share of the packets to 1:2. Each packet between two hosts
// crosses exactly one switch port outwards, so it sees the loss once.

const (
	prioSplit = "10"
	prioLoss  = "20"
)

// Cut disconnects h from the switch.
func (b *Bed) Cut(h *Host) {
	b.t.Helper()
	b.ip("-n", b.Switch, "link", "set", h.Port, "down")
}

// Heal connects h to the switch again.
func (b *Bed) Heal(h *Host) {
	b.t.Helper()
	b.ip("-n", b.Switch, "link", "set", h.Port, "up")
}

// shape gives a switch port the drop-capable qdisc, once.
func (b *Bed) shape(h *Host) error {
	b.mu.Lock()
	done := b.shaped[h.Port]
	b.mu.Unlock()
	if done {
		return nil
	}
	for _, args := range [][]string{
		{"qdisc", "add", "dev", h.Port, "root", "handle", "1:", "htb", "default", "1"},
		{"class", "add", "dev", h.Port, "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit", "quantum", "60000"},
		{"class", "add", "dev", h.Port, "parent", "1:", "classid", "1:2", "htb", "rate", "10gbit", "quantum", "60000"},
		{"qdisc", "add", "dev", h.Port, "parent", "1:2", "handle", "2:", "pfifo", "limit", "0"},
	} {
		if err := b.tc(args...); err != nil {
			return fmt.Errorf("%w: %v", errNoShaper, err)
		}
	}
	b.mu.Lock()
	b.shaped[h.Port] = true
	b.mu.Unlock()
	return nil
}

// Split cuts every path between side a and side b, both ways; hosts on
// the same side still reach each other. A failure fails the test.
func (b *Bed) Split(a, c []*Host) {
	b.t.Helper()
	drop := func(at *Host, from []*Host) {
		if err := b.shape(at); err != nil {
			b.t.Fatalf("netbed: split: %v", err)
		}
		for _, f := range from {
			if err := b.tc("filter", "add", "dev", at.Port, "parent", "1:", "prio", prioSplit, "protocol", "ip",
				"u32", "match", "ip", "src", f.Addr+"/32", "classid", "1:2"); err != nil {
				b.t.Fatalf("netbed: split: %v", err)
			}
		}
	}
	for _, h := range a {
		drop(h, c)
	}
	for _, h := range c {
		drop(h, a)
	}
}

// Unsplit undoes every Split.
func (b *Bed) Unsplit() {
	b.t.Helper()
	for _, h := range b.Hosts {
		if !b.isShaped(h) {
			continue
		}
		if err := b.tc("filter", "del", "dev", h.Port, "parent", "1:", "prio", prioSplit); err != nil && !noFilter(err) {
			b.t.Fatalf("netbed: unsplit: %v", err)
		}
	}
}

func (b *Bed) isShaped(h *Host) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.shaped[h.Port]
}

func noFilter(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Cannot find specified filter chain") || strings.Contains(s, "No such file")
}

// Loss drops pct percent of the packets to every host, chosen at random.
// It reports how ("netem", or "bpf random drop" where the kernel has no
// netem), or an error when the kernel offers neither: the caller skips.
func (b *Bed) Loss(pct int) (string, error) {
	if pct <= 0 || pct >= 100 {
		return "", fmt.Errorf("loss %d%%", pct)
	}
	how := ""
	for _, h := range b.Hosts {
		if err := b.shape(h); err != nil {
			return "", err
		}
		if how == "" || how == "netem" {
			err := b.tc("qdisc", "add", "dev", h.Port, "parent", "1:1", "handle", "10:", "netem", "loss", fmt.Sprintf("%d%%", pct))
			if err == nil {
				how = "netem"
				continue
			}
			if how == "netem" {
				return "", err
			}
		}
		if err := b.randomDrop(h, pct); err != nil {
			return "", err
		}
		how = "bpf random drop"
	}
	return how, nil
}

// NoLoss undoes Loss.
func (b *Bed) NoLoss() {
	b.t.Helper()
	for _, h := range b.Hosts {
		if !b.isShaped(h) {
			continue
		}
		if err := b.tc("qdisc", "del", "dev", h.Port, "parent", "1:1", "handle", "10:"); err != nil && !strings.Contains(err.Error(), "Invalid handle") && !strings.Contains(err.Error(), "Cannot find") && !strings.Contains(err.Error(), "No such file") {
			b.t.Logf("netbed: removing netem: %v", err)
		}
		if err := b.tc("filter", "del", "dev", h.Port, "parent", "1:", "prio", prioLoss); err != nil && !noFilter(err) {
			b.t.Fatalf("netbed: removing the loss filter: %v", err)
		}
	}
}

// Drops is, per host, how many packets its switch port dropped on
// purpose (split and loss), from `tc -s`.
func (b *Bed) Drops() map[string]string {
	out := map[string]string{}
	for _, h := range b.Hosts {
		if !b.isShaped(h) {
			continue
		}
		s, err := run("tc", "-n", b.Switch, "-s", "qdisc", "show", "dev", h.Port)
		if err != nil {
			continue
		}
		// The root htb line's "Sent X bytes N pkt (dropped D, ...".
		if i := strings.Index(s, "Sent "); i >= 0 {
			line := s[i:]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				line = line[:j]
			}
			out[h.Name] = strings.TrimSpace(line)
		}
	}
	return out
}

// randomDrop adds the filter that sends pct percent of the packets out
// of h's switch port, chosen at random, to the class that drops them.
func (b *Bed) randomDrop(h *Host, pct int) error {
	// ld rand (a random 32-bit number); if below pct% of 2^32, the
	// packet matches and goes to 1:2; otherwise no match (1:1).
	threshold := uint64(pct) << 32 / 100
	prog := fmt.Sprintf("4,32 0 0 %d,53 1 0 %d,6 0 0 4294967295,6 0 0 0", uint32(0xfffff000+56), threshold)
	if err := b.tc("filter", "add", "dev", h.Port, "parent", "1:", "prio", prioLoss, "bpf", "bytecode", prog, "classid", "1:2"); err != nil {
		return fmt.Errorf("no netem (sch_netem) and no bpf classifier: %v", err)
	}
	return nil
}
