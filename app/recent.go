package app

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"geca/internal/safefile"
)

// RecentFiles remembers the checkpoints the user opened, newest first, for
// the model picker. The list lives in one small JSON file (by default
// $XDG_CONFIG_HOME/geca/recent.json); a missing, unreadable or hostile file
// reads as an empty list, and the list is written whole or not at all, so
// it can never stop the viewer from starting.
type RecentFiles struct {
	Path string // the JSON file; "" keeps the list in memory only
	Max  int    // entries kept (0: 8)
	list []string
}

// recentFileMax bounds what is read back: a few kB of paths, not whatever
// the file has grown to.
const recentFileMax = 64 << 10

// DefaultRecentPath is where the viewer keeps its list ("" when the system
// names no configuration folder).
func DefaultRecentPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "geca", "recent.json")
}

// Load reads the list; anything wrong with the file leaves it empty and is
// returned only for the caller to mention (a missing file is not an error).
func (r *RecentFiles) Load() error {
	r.list = nil
	if r.Path == "" {
		return nil
	}
	b, err := safefile.ReadFile(r.Path, recentFileMax)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil // no list yet (or a file where its folder would be: Add says so)
	}
	if err != nil {
		return err
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New(r.Path + ": not a list of file names; starting a new one")
	}
	for _, p := range list {
		if p != "" && len(p) < 4096 && !slices.Contains(r.list, p) {
			r.list = append(r.list, p)
		}
	}
	r.list = r.list[:min(len(r.list), r.limit())]
	return nil
}

func (r *RecentFiles) limit() int {
	if r.Max > 0 {
		return r.Max
	}
	return 8
}

// List is the remembered files, newest first. The slice is never changed
// afterwards (Add makes a new one), so snapshots can share it.
func (r *RecentFiles) List() []string { return r.list }

// Add puts path first (absolute, once) and saves the list.
func (r *RecentFiles) Add(path string) error {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	list := []string{path}
	for _, p := range r.list {
		if p != path && len(list) < r.limit() {
			list = append(list, p)
		}
	}
	r.list = list
	if r.Path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(r.Path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r.list, "", "  ")
	if err != nil {
		return err
	}
	return safefile.WriteBytes(r.Path, append(b, '\n'))
}
