package loadtest

import "testing"

// closedLoopEngines are the engines that do closed-loop load on this OS.
func closedLoopEngines() []Engine {
	engines := []Engine{EngineGoroutines}
	if epollSupported {
		engines = append(engines, EngineEpoll)
	}
	return engines
}

// forEachEngine runs f as a subtest for each closed-loop engine.
func forEachEngine(t *testing.T, f func(t *testing.T, e Engine)) {
	t.Helper()
	for _, e := range closedLoopEngines() {
		t.Run(string(e), func(t *testing.T) { f(t, e) })
	}
}

// mustRunOn runs o on engine e and checks that e ran it.
func mustRunOn(t *testing.T, e Engine, o Options) *Result {
	t.Helper()
	o.Engine = e
	res := mustRun(t, o)
	if res.Engine != string(e) {
		t.Fatalf("engine %q ran the test, want %q", res.Engine, e)
	}
	return res
}
