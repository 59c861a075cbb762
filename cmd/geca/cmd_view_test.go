//go:build !cuda

package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// geca help view names the flags' arguments, not a command line; so do the
// other commands that take --engine.
func TestViewHelp(t *testing.T) {
	for _, cmd := range []string{"sample", "denoise"} {
		code, out, _ := capture(t, "help", cmd)
		if code != 0 || !strings.Contains(out, "-engine HOST:PORT") || strings.Contains(out, "-engine geca worker") {
			t.Errorf("geca help %s: exit %d, --engine's argument is not HOST:PORT:\n%s", cmd, code, out)
		}
	}
	code, out, _ := capture(t, "help", "view")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"-engine HOST:PORT", "-demo", "-max-memory string", "geca worker --listen"} {
		t.Run(want, func(t *testing.T) {
			if !strings.Contains(out, want) {
				t.Errorf("geca help view lacks %q:\n%s", want, out)
			}
		})
	}
	if strings.Contains(out, "-engine geca worker") {
		t.Errorf("the --engine flag's argument is a command line:\n%s", out)
	}
}

// On X11 without XDG_RUNTIME_DIR the Wayland attempt is made quiet; a
// Wayland session is left alone.
func TestQuietWayland(t *testing.T) {
	for ci, c := range []struct {
		xdg, wayland, display string
		quieted               bool
	}{
		{"", "", ":1", true},
		{"/run/user/1000", "", ":1", false},
		{"", "wayland-0", ":1", false},
		{"", "", "", false},
	} {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			t.Setenv("XDG_RUNTIME_DIR", c.xdg)
			t.Setenv("WAYLAND_DISPLAY", c.wayland)
			t.Setenv("DISPLAY", c.display)
			quietWayland()
			got := os.Getenv("WAYLAND_DISPLAY")
			if quieted := got != c.wayland; quieted != c.quieted {
				t.Errorf("XDG_RUNTIME_DIR=%q WAYLAND_DISPLAY=%q DISPLAY=%q: WAYLAND_DISPLAY became %q", c.xdg, c.wayland, c.display, got)
			}
		})
	}
}
