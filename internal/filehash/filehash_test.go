package filehash

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestBytesAndFile(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 appendix B.1.
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := Bytes([]byte("abc")); got != abc {
		t.Fatalf("Bytes(abc) = %s, want %s", got, abc)
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := File(p); err != nil || got != abc {
		t.Fatalf("File = %s, %v; want %s", got, err, abc)
	}
	if got, err := Path(p); err != nil || got != abc {
		t.Fatalf("Path(file) = %s, %v; want %s", got, err, abc)
	}
}

func TestFolderNamesAndContents(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("config.json", "{}")
	write("sub/w.bin", "weights")
	a, err := Path(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The folder's hash is the hash of its listing.
	cj, _ := File(filepath.Join(dir, "config.json"))
	wb, _ := File(filepath.Join(dir, "sub/w.bin"))
	if want := Bytes([]byte("config.json " + cj + "\nsub/w.bin " + wb + "\n")); a != want {
		t.Fatalf("Path(dir) = %s, want the listing's hash %s", a, want)
	}
	write("sub/w.bin", "weightz")
	if b, _ := Path(dir); b == a {
		t.Fatal("changing a file's contents kept the folder's hash")
	}
	os.Rename(filepath.Join(dir, "sub/w.bin"), filepath.Join(dir, "sub/x.bin"))
	if c, _ := Path(dir); c == a {
		t.Fatal("renaming a file kept the folder's hash")
	}
}

func TestRefusesWhatIsNotAFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	if _, err := File(fifo); err == nil {
		t.Fatal("File read a FIFO")
	}
	if _, err := File(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("File of a missing file gave no error")
	}
}
