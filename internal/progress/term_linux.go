package progress

import (
	"os"
	"syscall"
	"unsafe"
)

// isTerminal asks the tty driver for the terminal attributes, which only a
// terminal has; a character-device test alone would also accept /dev/null.
func isTerminal(f *os.File) bool {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}
