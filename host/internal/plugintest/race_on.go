//go:build race

package plugintest

// raceDetector reports whether this test binary runs under the race
// detector, whose instrumented wazero compiler is several times slower.
const raceDetector = true
