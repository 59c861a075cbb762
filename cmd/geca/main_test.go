package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// When GECA_TEST_MAIN is set, the test binary acts as geca itself, so that
// the exit codes of the real process (os.Exit) can be checked.
func TestMain(m *testing.M) {
	if os.Getenv("GECA_TEST_MAIN") == "1" {
		main()
	}
	register(testCommand)
	os.Exit(m.Run())
}

// testCommand exercises the flag handling every command shares.
var testCommand = &command{
	name:    "zz-test",
	summary: "a command that exists only in tests",
	usage:   "[-n N] [-fail]",
}

func init() {
	testCommand.run = func(args []string) error {
		fs := newFlags(testCommand)
		n := fs.Int("n", 1, "a number")
		fail := fs.Bool("fail", false, "fail at run time")
		if err := parseFlags(fs, testCommand, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usagef("unexpected argument %q", fs.Arg(0))
		}
		if *fail {
			return errors.New("it failed")
		}
		_ = n
		return nil
	}
}

// capture runs geca's run with args and returns its exit code and output.
func capture(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	oldOut, oldErr := os.Stdout, os.Stderr
	rOut, wOut, _ := os.Pipe()
	rErr, wErr, _ := os.Pipe()
	os.Stdout, os.Stderr = wOut, wErr
	outC, errC := make(chan string), make(chan string)
	go func() { b, _ := io.ReadAll(rOut); outC <- string(b) }()
	go func() { b, _ := io.ReadAll(rErr); errC <- string(b) }()
	code = run(args)
	wOut.Close()
	wErr.Close()
	os.Stdout, os.Stderr = oldOut, oldErr
	return code, <-outC, <-errC
}

func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		args       []string
		code       int
		out, errIn string // substrings expected in stdout and stderr
	}{
		{[]string{"version"}, 0, "geca ", ""},
		{[]string{"--version"}, 0, "BLAS: ", ""},
		{[]string{"help"}, 0, "version", ""},
		{[]string{"-h"}, 0, "commands:", ""},
		{[]string{"--help"}, 0, "zz-test", ""},
		{[]string{"help", "zz-test"}, 0, "-fail", ""},
		{[]string{"help", "nosuch"}, 2, "", `unknown command "nosuch"`},
		{[]string{"nosuch"}, 2, "", `unknown command "nosuch"`},
		{[]string{"zz-test"}, 0, "", ""},
		{[]string{"zz-test", "-n", "3"}, 0, "", ""},
		{[]string{"zz-test", "-h"}, 0, "usage: geca zz-test", ""},
		{[]string{"zz-test", "--bogus"}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"zz-test", "-n", "three"}, 2, "", "usage: geca zz-test [-n N] [-fail]"},
		{[]string{"zz-test", "extra"}, 2, "", `unexpected argument "extra"`},
		{[]string{"zz-test", "-fail"}, 1, "", "geca zz-test: it failed"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, out, errOut := capture(t, c.args...)
			if code != c.code || !strings.Contains(out, c.out) || !strings.Contains(errOut, c.errIn) {
				t.Errorf("geca %s: exit %d, stdout %q, stderr %q; want exit %d, stdout containing %q, stderr containing %q",
					strings.Join(c.args, " "), code, out, errOut, c.code, c.out, c.errIn)
			}
		})
	}
}

// TestProcessExitCodes checks the codes the operating system sees.
func TestProcessExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"version"}, 0},
		{[]string{"help"}, 0},
		{[]string{"nosuch"}, 2},
		{[]string{"help", "nosuch"}, 2},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], c.args...)
			cmd.Env = append(os.Environ(), "GECA_TEST_MAIN=1")
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code {
				t.Errorf("geca %s: exit %d, want %d; output %q", strings.Join(c.args, " "), code, c.code, out)
			}
		})
	}
}
