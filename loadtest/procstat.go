package loadtest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of the CPU times in /proc/PID/stat: the kernel
// reports them in USER_HZ ticks, which is 100 per second on Linux for
// x86 and arm (see proc(5)).
const userHZ = 100

// ProcessCPUSeconds returns the user plus system CPU time that process
// pid has used so far, from /proc/PID/stat on Linux.
func ProcessCPUSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time of process %d: %w", pid, err)
	}
	// The command name, the second field, is in parentheses and may
	// contain spaces, so fields are counted from the last ')'.
	text := string(data)
	end := strings.LastIndexByte(text, ')')
	if end < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat: no ')' after the command name", pid)
	}
	fields := strings.Fields(text[end+1:])
	// After the name, field 1 is the state; utime and stime are fields 12
	// and 13 here (14 and 15 in proc(5)'s numbering).
	if len(fields) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields after the command name, want at least 13", pid, len(fields))
	}
	var ticks float64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/%d/stat: CPU time %q: %w", pid, f, err)
		}
		ticks += float64(n)
	}
	return ticks / userHZ, nil
}

// ProcessMemoryKiB returns a memory field of /proc/PID/status, such as
// VmRSS (resident memory) or VmHWM (its peak), in KiB.
func ProcessMemoryKiB(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		number, _, _ := strings.Cut(strings.TrimSpace(value), " ")
		kib, err := strconv.ParseInt(number, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s of process %d: %q: %w", field, pid, value, err)
		}
		return kib, nil
	}
	return 0, fmt.Errorf("process %d has no %s in /proc/%d/status", pid, field, pid)
}

// LoadAverage returns the one-minute load average of the host, from
// /proc/loadavg.
func LoadAverage() (float64, error) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, fmt.Errorf("read load average: %w", err)
	}
	first, _, _ := strings.Cut(string(data), " ")
	load, err := strconv.ParseFloat(first, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/loadavg %q: %w", strings.TrimSpace(string(data)), err)
	}
	return load, nil
}

// HostCPUSeconds returns the CPU time all cores of the host have spent
// busy since boot, from /proc/stat. Idle, I/O wait and steal (time the
// hypervisor gave to other machines) do not count as busy.
func HostCPUSeconds() (float64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read host CPU time: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	// The first line is "cpu user nice system idle iowait irq softirq
	// steal guest guest_nice"; guest time is also counted in user.
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, fmt.Errorf("parse /proc/stat: first line %q is not the cpu total", line)
	}
	var busy float64
	for i, f := range fields[1:9] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/stat: %q: %w", f, err)
		}
		if i == 3 || i == 4 || i == 7 { // idle, iowait, steal
			continue
		}
		busy += float64(n)
	}
	return busy / userHZ, nil
}

// resourceSample is a reading of the CPU counters that a run compares at
// its start and end. Readings that failed are -1.
type resourceSample struct {
	host, self, server float64
}

func sampleResources(serverPID int) resourceSample {
	s := resourceSample{host: -1, self: -1, server: -1}
	if v, err := HostCPUSeconds(); err == nil {
		s.host = v
	}
	if v, err := ProcessCPUSeconds(os.Getpid()); err == nil {
		s.self = v
	}
	if serverPID > 0 {
		if v, err := ProcessCPUSeconds(serverPID); err == nil {
			s.server = v
		}
	}
	return s
}

// delta returns end-start, or -1 when either reading failed.
func delta(start, end float64) float64 {
	if start < 0 || end < 0 {
		return -1
	}
	return end - start
}
