package main

import "testing"

// TestIsLoopbackURL: zos hub convert sends registry credentials over plain
// HTTP only to a hub on this machine.
func TestIsLoopbackURL(t *testing.T) {
	for raw, want := range map[string]bool{
		"http://127.0.0.1:8090": true, "http://localhost:8090": true, "http://[::1]:8090": true,
		"http://10.0.0.5:8090": false, "http://hub.example.org": false, "http://127.0.0.1.example.org": false, "::bad": false,
	} {
		if got := isLoopbackURL(raw); got != want {
			t.Errorf("isLoopbackURL(%q) = %v, want %v", raw, got, want)
		}
	}
}
