package app

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The list keeps the newest first, each file once, at most Max, and
// survives a restart through its file.
func TestRecentFilesOrderAndPersistence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cfg", "geca", "recent.json")
	r := &RecentFiles{Path: path, Max: 3}
	for _, f := range []string{"/m/a.pt", "/m/b.pt", "/m/a.pt", "/m/c.pt", "/m/d.pt"} {
		if err := r.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"/m/d.pt", "/m/c.pt", "/m/a.pt"}
	if got := r.List(); !slices.Equal(got, want) {
		t.Fatalf("list %v, want %v", got, want)
	}
	again := &RecentFiles{Path: path, Max: 3}
	if err := again.Load(); err != nil {
		t.Fatal(err)
	}
	if got := again.List(); !slices.Equal(got, want) {
		t.Fatalf("after a restart: %v, want %v", got, want)
	}
	// relative names are remembered absolute
	if err := again.Add("rel.safetensors"); err != nil {
		t.Fatal(err)
	}
	if got := again.List()[0]; !filepath.IsAbs(got) || !strings.HasSuffix(got, "rel.safetensors") {
		t.Fatalf("relative name kept as %q", got)
	}
}

// Whatever is in the file, Load returns with a usable (maybe empty) list:
// the viewer must start anyway.
func TestRecentFilesHostile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not json":    "{{{",
		"not a list":  `{"a": 1}`,
		"numbers":     `[1, 2, 3]`,
		"huge":        "[\"" + strings.Repeat("x", 200<<10) + "\"]",
		"long names":  "[\"" + strings.Repeat("y", 5000) + "\", \"/ok.pt\"]",
		"duplicates":  `["/a.pt", "/a.pt", "", "/b.pt"]`,
		"many":        `["/1", "/2", "/3", "/4", "/5", "/6", "/7", "/8", "/9", "/10"]`,
		"empty file":  "",
		"null":        "null",
		"nested list": `[["/a.pt"]]`,
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			r := &RecentFiles{Path: p}
			err := r.Load()
			got := r.List()
			if len(got) > 8 {
				t.Fatalf("%d entries kept", len(got))
			}
			seen := map[string]bool{}
			for _, f := range got {
				if f == "" || len(f) >= 4096 || seen[f] {
					t.Fatalf("bad entry kept: %q (list %q)", f[:min(len(f), 40)], got)
				}
				seen[f] = true
			}
			if err != nil && len(got) != 0 {
				t.Fatalf("error %v but entries %v", err, got)
			}
			if name == "duplicates" && !slices.Equal(got, []string{"/a.pt", "/b.pt"}) {
				t.Fatalf("duplicates: %v", got)
			}
			// and a new entry can always be saved over it
			if err := r.Add("/new.pt"); err != nil {
				t.Fatal(err)
			}
		})
	}
	// a file where the list's folder should be: no list, and saving says why
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, []byte("x"), 0o644)
	r := &RecentFiles{Path: filepath.Join(notDir, "recent.json")}
	if err := r.Load(); err != nil || len(r.List()) != 0 {
		t.Fatalf("list under a file: %v, %v", r.List(), err)
	}
	if err := r.Add("/a.pt"); err == nil {
		t.Fatal("saving under a file gave no error")
	}
	// a folder where the file should be
	r = &RecentFiles{Path: dir}
	if err := r.Load(); err == nil {
		t.Fatal("a folder read as a list")
	}
	if len(r.List()) != 0 {
		t.Fatal("a folder gave entries")
	}
}
