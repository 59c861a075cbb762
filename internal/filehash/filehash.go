// Package filehash names the bytes a result was made from: the SHA-256 of a
// checkpoint, of a VAE file or of a diffusers folder, as hex. Exports,
// sample sets and the viewer's stamps all record it the same way, so one
// hash identifies one model wherever it appears.
package filehash

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"geca/internal/safefile"
)

// Bytes is the SHA-256 of b.
func Bytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// File is the SHA-256 of a regular file's contents (a FIFO or device is
// refused, not read forever).
func File(path string) (string, error) {
	f, _, err := safefile.OpenRegular(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Path is File for a file, and for a folder (a diffusers VAE) the SHA-256
// of the list "relative-name hash" of its regular files in name order, so
// renaming or changing any file changes it.
func Path(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return File(path)
	}
	var buf bytes.Buffer
	err = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		hv, err := File(p)
		rel, _ := filepath.Rel(path, p)
		fmt.Fprintf(&buf, "%s %s\n", rel, hv)
		return err
	})
	if err != nil {
		return "", err
	}
	return Bytes(buf.Bytes()), nil
}
