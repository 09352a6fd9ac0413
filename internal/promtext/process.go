package promtext

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100 on
// every Linux architecture Go runs on.
const userHZ = 100

// WriteProcess adds the process_* and go_* families that Prometheus's own
// Go and process collectors export under the same names (the subset a
// dashboard of a daemon's health uses): CPU, memory, descriptors, start
// time, goroutines, threads, heap. It reads /proc/self; the figures it
// cannot read are left out and reported in the error.
func (w *Writer) WriteProcess() error {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.Write(Family{Name: "go_goroutines", Help: "Number of goroutines that currently exist.", Type: Gauge}, One(float64(runtime.NumGoroutine())))
	w.Write(Family{Name: "go_info", Help: "Information about the Go environment.", Type: Gauge, Labels: []string{"version"}}, With(1, runtime.Version()))
	w.Write(Family{Name: "go_memstats_alloc_bytes", Help: "Number of bytes allocated in heap and currently in use.", Type: Gauge}, One(float64(ms.HeapAlloc)))
	w.Write(Family{Name: "go_memstats_heap_objects", Help: "Number of currently allocated objects.", Type: Gauge}, One(float64(ms.HeapObjects)))
	w.Write(Family{Name: "go_memstats_sys_bytes", Help: "Number of bytes obtained from system.", Type: Gauge}, One(float64(ms.Sys)))
	w.Write(Family{Name: "go_memstats_next_gc_bytes", Help: "Number of heap bytes when next garbage collection will take place.", Type: Gauge}, One(float64(ms.NextGC)))
	w.Write(Family{Name: "go_gc_cycles_total", Help: "Number of completed GC cycles.", Type: Counter}, One(float64(ms.NumGC)))

	var errs []error
	st, err := readStat("/proc/self/stat")
	if err != nil {
		errs = append(errs, err)
	} else {
		w.Write(Family{Name: "go_threads", Help: "Number of OS threads created.", Type: Gauge}, One(float64(st.threads)))
		w.Write(Family{Name: "process_cpu_seconds_total", Help: "Total user and system CPU time spent in seconds.", Type: Counter}, One(float64(st.utime+st.stime)/userHZ))
		w.Write(Family{Name: "process_resident_memory_bytes", Help: "Resident memory size in bytes.", Type: Gauge}, One(float64(st.rss*int64(os.Getpagesize()))))
		w.Write(Family{Name: "process_virtual_memory_bytes", Help: "Virtual memory size in bytes.", Type: Gauge}, One(float64(st.vsize)))
		if boot, err := bootTime("/proc/stat"); err != nil {
			errs = append(errs, err)
		} else {
			w.Write(Family{Name: "process_start_time_seconds", Help: "Start time of the process since unix epoch in seconds.", Type: Gauge}, One(float64(boot)+float64(st.start)/userHZ))
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err != nil {
		errs = append(errs, err)
	} else {
		w.Write(Family{Name: "process_open_fds", Help: "Number of open file descriptors.", Type: Gauge}, One(float64(len(fds))))
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		errs = append(errs, fmt.Errorf("getrlimit NOFILE: %w", err))
	} else {
		w.Write(Family{Name: "process_max_fds", Help: "Maximum number of open file descriptors.", Type: Gauge}, One(float64(lim.Cur)))
	}
	return errors.Join(errs...)
}

// procStat is what WriteProcess uses of /proc/PID/stat.
type procStat struct {
	utime, stime, start int64 // in USER_HZ ticks; start since boot
	threads, rss        int64 // rss in pages
	vsize               uint64
}

// readStat parses /proc/PID/stat. The command name (field 2) is in
// parentheses and may hold spaces and parentheses itself: the fields
// after it are counted from the last ')'.
func readStat(path string) (procStat, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, err
	}
	return parseStat(path, string(data))
}

func parseStat(path, data string) (procStat, error) {
	i := strings.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("%s: no ')' after the command name", path)
	}
	// f[0] is field 3 (state).
	f := strings.Fields(data[i+1:])
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("%s: %d fields after the command name, want at least 22", path, len(f))
	}
	var st procStat
	var errs []error
	num := func(field int) int64 {
		v, err := strconv.ParseInt(f[field-3], 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: field %d: %w", path, field, err))
		}
		return v
	}
	st.utime, st.stime = num(14), num(15)
	st.threads, st.start = num(20), num(22)
	st.vsize = uint64(num(23))
	st.rss = num(24)
	return st, errors.Join(errs...)
}

// bootTime is the btime line of /proc/stat: the boot time in seconds
// since the epoch.
func bootTime(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: btime: %w", path, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s: no btime line", path)
}
