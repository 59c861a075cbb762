package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// OpenRegular opens path for reading if it is a regular file, and refuses
// anything else (a folder, a named pipe, a device, a socket) with an error
// naming the path. The file is opened without blocking and checked on the
// open descriptor, so a named pipe that nobody writes cannot hang the
// caller, and nothing can swap the file between the check and the open.
func OpenRegular(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNoBlock, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := regular(path, fi); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// regular reports why fi, the file at path, is not a regular file.
func regular(path string, fi fs.FileInfo) error {
	m := fi.Mode()
	switch {
	case m.IsRegular():
		return nil
	case m.IsDir():
		return fmt.Errorf("%s: is a folder, not a file", path)
	case m&fs.ModeNamedPipe != 0:
		return fmt.Errorf("%s: is a named pipe, not a regular file", path)
	case m&fs.ModeDevice != 0 || m&fs.ModeCharDevice != 0:
		return fmt.Errorf("%s: is a device, not a regular file", path)
	case m&fs.ModeSocket != 0:
		return fmt.Errorf("%s: is a socket, not a regular file", path)
	}
	return fmt.Errorf("%s: not a regular file", path)
}

// ErrTooLarge is wrapped by ReadFile's error for a file over its limit.
var ErrTooLarge = errors.New("file too large")

// ReadFile reads a regular file (OpenRegular) of at most max bytes: a larger
// one is refused before anything is read, and a file that grows while it is
// read is cut at max+1 bytes and refused.
func ReadFile(path string, max int64) ([]byte, error) {
	f, fi, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed: %w", path, fi.Size(), max, ErrTooLarge)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: more than the %d bytes allowed: %w", path, max, ErrTooLarge)
	}
	return b, nil
}

// IsRegular reports whether path names a regular file (following symbolic
// links), without opening it.
func IsRegular(path string) bool { return CheckRegular(path) == nil }

// CheckRegular reports why path is not a regular file (following symbolic
// links), without opening it; nil when it is one.
func CheckRegular(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return regular(path, fi)
}
