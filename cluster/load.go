package cluster

import (
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
)

func numCPU() int { return runtime.NumCPU() }

// loadAvg is the 5-minute load average, rounded to 0.01 so that noise
// below that makes no new status version. HA placement ranks nodes by
// it: the 5-minute average follows real load, not a burst.
func loadAvg() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0
	}
	l, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		return 0
	}
	return math.Round(l*100) / 100
}
