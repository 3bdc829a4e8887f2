package loadtest

import (
	"os"
	"testing"
	"time"
)

func TestProcessCPUSecondsOfSelf(t *testing.T) {
	first, err := ProcessCPUSeconds(os.Getpid())
	if err != nil {
		t.Fatalf("CPU time of self: %v", err)
	}
	// Spin until the kernel's 10ms tick has counted some of this work.
	deadline := time.Now().Add(10 * time.Second)
	sum := 0
	for i := 1; time.Now().Before(deadline); i++ {
		sum += i % 7
		if i%1_000_000 != 0 {
			continue
		}
		now, err := ProcessCPUSeconds(os.Getpid())
		if err != nil {
			t.Fatalf("CPU time of self: %v", err)
		}
		if now > first {
			return
		}
	}
	t.Errorf("CPU time stayed at %v s through 10s of spinning (sum %d)", first, sum)
}

func TestProcessCPUSecondsMissingProcess(t *testing.T) {
	if _, err := ProcessCPUSeconds(1 << 30); err == nil {
		t.Errorf("CPU time of a process that does not exist: err = nil, want an error")
	}
}

func TestProcessMemoryKiB(t *testing.T) {
	rss, err := ProcessMemoryKiB(os.Getpid(), "VmRSS")
	if err != nil {
		t.Fatalf("VmRSS of self: %v", err)
	}
	if rss <= 0 {
		t.Errorf("VmRSS = %d KiB, want above 0", rss)
	}
	if _, err := ProcessMemoryKiB(os.Getpid(), "NoSuchField"); err == nil {
		t.Errorf("missing field: err = nil, want an error")
	}
}

func TestHostCPUAndLoadAverage(t *testing.T) {
	busy, err := HostCPUSeconds()
	if err != nil {
		t.Fatalf("host CPU: %v", err)
	}
	if busy <= 0 {
		t.Errorf("host busy CPU = %v s, want above 0", busy)
	}
	load, err := LoadAverage()
	if err != nil {
		t.Fatalf("load average: %v", err)
	}
	if load < 0 {
		t.Errorf("load average = %v, want at least 0", load)
	}
}

func TestCPUReportSplitsBusyTime(t *testing.T) {
	before := resourceSample{host: 100, self: 10, server: 20}
	after := resourceSample{host: 200, self: 30, server: 90}
	c := cpuReport(before, after, 42, 7000)
	if c == nil {
		t.Fatalf("cpu report = nil, want one")
	}
	if c.HostBusySeconds != 100 {
		t.Errorf("host busy = %v, want 100", c.HostBusySeconds)
	}
	if c.LoadTesterSeconds != 20 {
		t.Errorf("load tester = %v, want 20", c.LoadTesterSeconds)
	}
	if c.ServerSeconds != 70 {
		t.Errorf("server = %v, want 70", c.ServerSeconds)
	}
	if c.OtherSeconds != 10 {
		t.Errorf("other = %v, want 10", c.OtherSeconds)
	}
	if c.ServerMillisPerCall != 10 {
		t.Errorf("server ms per call = %v, want 10", c.ServerMillisPerCall)
	}
	if c.ServerPID != 42 {
		t.Errorf("server pid = %d, want 42", c.ServerPID)
	}

	noServer := cpuReport(resourceSample{host: 1, self: 1, server: -1}, resourceSample{host: 2, self: 2, server: -1}, 0, 10)
	if noServer == nil || noServer.ServerPID != 0 || noServer.ServerSeconds != 0 {
		t.Errorf("report without a server = %+v, want host figures only", noServer)
	}
	if cpuReport(resourceSample{host: -1}, resourceSample{host: 5}, 0, 1) != nil {
		t.Errorf("report with an unreadable host counter is not nil")
	}
}
