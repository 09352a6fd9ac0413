package netbed

import "fmt"

// LossTo drops pct percent of the packets towards h alone, chosen at
// random: what h sends is untouched (a link that loses in one direction,
// as a bad cable or a duplex mismatch does). It works as Loss does, on
// h's switch port only (netem on its default class, or the random drop
// filter), and reports how; NoLoss undoes it.
func (b *Bed) LossTo(h *Host, pct int) (string, error) {
	if pct <= 0 || pct >= 100 {
		return "", fmt.Errorf("loss %d%%", pct)
	}
	if err := b.shape(h); err != nil {
		return "", err
	}
	if err := b.tc("qdisc", "add", "dev", h.Port, "parent", "1:1", "handle", "10:", "netem", "loss", fmt.Sprintf("%d%%", pct)); err == nil {
		return "netem", nil
	}
	if err := b.randomDrop(h, pct); err != nil {
		return "", err
	}
	return "bpf random drop", nil
}
