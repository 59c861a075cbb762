package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"geca/engine"
	"geca/engine/compute"
	"geca/engine/remote"
	"geca/engine/sample"
)

// openCUDA opens the GPU engine in this process with its matrix products
// computed as mode says. It is set only in builds with -tags cuda
// (cmd_worker_cuda.go); such builds have no viewer and die at start without
// a working NVIDIA driver, which is why the viewer and the CPU binary reach
// the GPU through a worker process instead.
var openCUDA func(mode gpuMode) (engine.Accelerator, error)

// gpuMode is how the GPU engine computes its matrix products: in a
// precision (one of gpuPrecisions) with its own kernels, or, with cuBLAS,
// in FP32 by cuBLAS found at run time.
type gpuMode struct {
	precision string
	cublas    bool
}

// check reports a precision other than the known ones, and cuBLAS with a
// precision other than fp32.
func (m gpuMode) check() error {
	if err := checkPrecision(m.precision); err != nil {
		return err
	}
	if m.cublas && m.precision != "fp32" {
		return fmt.Errorf("cuBLAS computes in fp32: it does not go with precision %s", m.precision)
	}
	return nil
}

// gpuPrecisions name the arithmetic of the GPU engine's matrix products
// (cuda.Precision; named here because only the -tags cuda build links that
// package): fp32 as the CPU engine computes (relative error after a denoiser
// call about 2e-7), or on the tensor cores with operands rounded to tf32
// (about 3e-4) or bf16 (about 3e-3), for speed.
var gpuPrecisions = []string{"fp32", "tf32", "bf16"}

func checkPrecision(p string) error {
	if slices.Contains(gpuPrecisions, p) {
		return nil
	}
	return fmt.Errorf("precision %q: want fp32, tf32 or bf16", p)
}

// gpuPrecision is the precision the environment asks for: $GECA_PRECISION,
// else tf32 when $GECA_TF32=1 (the older switch), else fp32. A bad value is
// a usage error. A GPU worker started by --device cuda inherits both.
func gpuPrecision() (string, error) {
	if p := os.Getenv("GECA_PRECISION"); p != "" {
		if err := checkPrecision(p); err != nil {
			return "", usagef("$GECA_PRECISION: %v", err)
		}
		return p, nil
	}
	if os.Getenv("GECA_TF32") == "1" {
		return "tf32", nil
	}
	return "fp32", nil
}

// envGPUMode is the mode the environment asks for: gpuPrecision, and cuBLAS
// when $GECA_CUBLAS=1. A bad value or combination is a usage error.
func envGPUMode() (gpuMode, error) {
	p, err := gpuPrecision()
	if err != nil {
		return gpuMode{}, err
	}
	m := gpuMode{precision: p}
	if m.cublas, err = envCublas(); err != nil {
		return gpuMode{}, err
	}
	if err := m.check(); err != nil {
		return gpuMode{}, usagef("$GECA_CUBLAS and $GECA_PRECISION: %v", err)
	}
	return m, nil
}

// envCublas is whether $GECA_CUBLAS asks for cuBLAS (1) or not (0 or unset).
func envCublas() (bool, error) {
	switch v := os.Getenv("GECA_CUBLAS"); v {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	default:
		return false, usagef("$GECA_CUBLAS=%q: want 1 (or 0)", v)
	}
}

// gpuWorkerName is the GPU build of geca that --device cuda starts as a
// worker.
const gpuWorkerName = "geca-cuda"

func init() {
	c := &command{
		name:    "worker",
		summary: "serve the engine to a viewer or command: on stdin/stdout (the default) or on TCP with a token",
		usage:   "[--device cpu|cuda|auto] [--precision fp32|tf32|bf16] [--cublas] [--listen HOST:PORT] [--token TOKEN] [--max-conns N] [--max-memory SIZE]",
	}
	c.run = func(args []string) error { return runWorker(c, args) }
	register(c)
}

func runWorker(c *command, args []string) error {
	fs := newFlags(c)
	device := fs.String("device", "auto", "what to compute on: cpu, cuda (this binary's GPU engine; needs a build with -tags cuda) or auto")
	listen := fs.String("listen", "", "serve on this TCP address (HOST:PORT; port 0 picks one) instead of stdin/stdout; clients must present the token")
	token := fs.String("token", "", "token clients must present with --listen (default $GECA_TOKEN, else a random one, printed)")
	maxConns := fs.Int("max-conns", 4, "authenticated connections served at once with --listen (connections still authenticating do not count; they have 5 s)")
	prec := fs.String("precision", "", "GPU: arithmetic of the matrix products: fp32 (the default); tf32 or bf16 on the tensor cores, faster, with a relative error after a denoiser call of about 3e-4 (tf32) or 3e-3 (bf16) instead of 2e-7 (default $GECA_PRECISION)")
	tf := fs.Bool("tf32", false, "GPU: the same as --precision tf32 (or $GECA_TF32=1)")
	useCublas := fs.Bool("cublas", false, "GPU: FP32 matrix products by cuBLAS (libcublas.so.13, .12 or .11, found at run time; $GECA_CUBLAS_LIB names the file) instead of geca's kernels (or $GECA_CUBLAS=1)")
	maxMem := addMemoryFlag(fs)
	if err := parseFlags(fs, c, args); err != nil {
		return err
	}
	if err := applyMemoryFlag(maxMem); err != nil {
		return err
	}
	if *maxConns < 1 || *maxConns > 1024 {
		return usagef("--max-conns %d out of range [1, 1024]", *maxConns)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q\nusage: geca worker %s", fs.Arg(0), c.usage)
	}
	switch {
	case *tf && *prec != "" && *prec != "tf32":
		return usagef("--tf32 and --precision %s contradict each other", *prec)
	case *tf:
		*prec = "tf32"
	case *prec != "":
		if err := checkPrecision(*prec); err != nil {
			return usagef("--%v", err)
		}
	}
	var acc engine.Accelerator
	desc := cpuDescription()
	switch *device {
	case "cpu":
	case "cuda", "auto":
		// Flags first, the environment for what they leave open.
		mode := gpuMode{precision: *prec, cublas: *useCublas}
		var err error
		if mode.precision == "" {
			if mode.precision, err = gpuPrecision(); err != nil {
				return err
			}
		}
		if !mode.cublas {
			if mode.cublas, err = envCublas(); err != nil {
				return err
			}
		}
		if err := mode.check(); err != nil {
			return usagef("%v", err)
		}
		if openCUDA == nil {
			if *device == "cuda" {
				return fmt.Errorf("this geca is built without the GPU engine: build it with -tags cuda (go build -tags cuda -o %s ./cmd/geca)", gpuWorkerName)
			}
			break
		}
		a, err := openCUDA(mode)
		if err != nil {
			if *device == "cuda" {
				return err
			}
			fmt.Fprintf(os.Stderr, "geca worker: GPU unavailable, computing on the CPU: %v\n", err)
			break
		}
		acc, desc = a, a.Name()
	default:
		return usagef("--device %q: want cpu, cuda or auto", *device)
	}
	srv := &remote.Server{
		Worker: versionLine(), Device: desc, MaxConns: *maxConns,
		Prepare: func(m *engine.Model) error {
			if acc != nil {
				m.SetAccelerator(acc)
			}
			return nil
		},
		Logf: func(format string, a ...any) { fmt.Fprintf(os.Stderr, "geca worker: "+format+"\n", a...) },
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *listen == "" {
		// The protocol owns stdout; anything else printed goes to stderr.
		rwc := remote.Stdio()
		os.Stdout = os.Stderr
		srv.Logf = nil
		return srv.ServeConn(ctx, rwc)
	}
	tok := *token
	if tok == "" {
		tok = os.Getenv("GECA_TOKEN")
	}
	if tok == "" {
		var err error
		if tok, err = remote.GenerateToken(); err != nil {
			return err
		}
	}
	srv.Token = tok
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if !remote.IsLoopback(l.Addr()) && len(tok) < remote.MinTokenLen {
		l.Close()
		return usagef("--listen %s is reachable from the network: the token must have at least %d characters (leave --token and $GECA_TOKEN unset for a random one)", l.Addr(), remote.MinTokenLen)
	}
	fmt.Fprintf(os.Stderr, "geca worker: serving %s on %s\n", desc, l.Addr())
	fmt.Fprintf(os.Stderr, "geca worker: connect with: geca view --engine %s --token %s\n", l.Addr(), tok)
	if h, _, _ := net.SplitHostPort(l.Addr().String()); !net.ParseIP(h).IsLoopback() {
		fmt.Fprintln(os.Stderr, "geca worker: the connection is not encrypted; on an untrusted network reach it through an SSH tunnel")
	}
	return srv.Serve(ctx, l)
}

func cpuDescription() string {
	return fmt.Sprintf("CPU: %d cores, %s", runtime.NumCPU(), compute.BLASName)
}

// deviceFlags are the flags that choose where a command computes.
type deviceFlags struct {
	device, engine, token string
}

func addDeviceFlags(fs *flag.FlagSet, def string) *deviceFlags {
	d := &deviceFlags{}
	fs.StringVar(&d.device, "device", def, "what to compute on: cpu; cuda (the GPU worker "+gpuWorkerName+", found next to geca, on PATH or in $GECA_CUDA_WORKER; $GECA_PRECISION=tf32 or bf16 for the tensor cores, $GECA_CUBLAS=1 for cuBLAS); auto (cuda when it starts and works, else cpu)")
	// the flag package shows a backquoted word of a usage as the flag's
	// argument: name the argument, not the worker's command line
	fs.StringVar(&d.engine, "engine", "", "compute on a running geca worker (geca worker --listen) at `HOST:PORT` instead")
	fs.StringVar(&d.token, "token", "", "token of the --engine worker (default $GECA_TOKEN)")
	return d
}

func (d *deviceFlags) check() error {
	switch d.device {
	case "cpu", "cuda", "auto":
		return nil
	}
	return usagef("--device %q: want cpu, cuda or auto", d.device)
}

// addCPUDeviceFlag is --device for commands that compute on the CPU only
// (training, the VAE): every command takes the flag, and these say why they
// cannot use the GPU rather than not knowing it.
func addCPUDeviceFlag(fs *flag.FlagSet) *string {
	return fs.String("device", "auto", "what to compute on: cpu or auto (both the CPU: the GPU engine runs the GeCA model's denoiser for sample, view, denoise and worker, not this command)")
}

// checkCPUDevice checks the --device of a CPU-only command named cmd.
func checkCPUDevice(device, cmd string) error {
	switch device {
	case "cpu", "auto":
		return nil
	case "cuda":
		return usagef("--device cuda: geca %s computes on the CPU only; the GPU engine runs the GeCA denoiser (sample, view, denoise, worker)", cmd)
	}
	return usagef("--device %q: want cpu or auto (geca %s computes on the CPU)", device, cmd)
}

// backend is where a command computes: in this process (on the CPU, or on
// the GPU in a -tags cuda build) or in a worker.
type backend struct {
	client *remote.Client     // a worker; nil: this process
	accel  engine.Accelerator // this process's GPU; nil: CPU (or the worker)
	desc   string             // what computes, for messages
	why    string             // why auto chose the CPU ("" otherwise)
}

// open starts or connects to what d asks for.
func (d *deviceFlags) open() (*backend, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	if d.engine != "" {
		tok := d.token
		if tok == "" {
			tok = os.Getenv("GECA_TOKEN")
		}
		c, err := remote.Dial(context.Background(), d.engine, remote.Options{Token: tok, Client: versionLine()})
		if err != nil {
			return nil, err
		}
		return &backend{client: c, desc: fmt.Sprintf("worker %s (%s)", d.engine, c.Device())}, nil
	}
	if d.device == "cpu" {
		return &backend{desc: cpuDescription()}, nil
	}
	if _, err := envGPUMode(); err != nil {
		return nil, err // a mistake to report, not a reason to fall back to the CPU
	}
	b, err := openGPU()
	if err == nil {
		return b, nil
	}
	if d.device == "cuda" {
		return nil, err
	}
	return &backend{desc: cpuDescription(), why: err.Error()}, nil
}

// openGPU opens the GPU engine: in this process when it has one, else the
// GPU worker as a child process.
func openGPU() (*backend, error) {
	if openCUDA != nil {
		mode, err := envGPUMode()
		if err != nil {
			return nil, err
		}
		a, err := openCUDA(mode)
		if err != nil {
			return nil, err
		}
		return &backend{accel: a, desc: a.Name()}, nil
	}
	path, err := findGPUWorker()
	if err != nil {
		return nil, err
	}
	// The worker's own messages only matter when it fails, and then its
	// last words are part of the error.
	c, err := remote.Start(path, []string{"worker", "--device", "cuda"}, nil, remote.Options{Client: versionLine()})
	if err != nil {
		return nil, fmt.Errorf("GPU worker: %w", err)
	}
	if !strings.HasPrefix(c.Device(), "CUDA") {
		c.Close()
		return nil, fmt.Errorf("GPU worker %s computes on %q, not a GPU", path, c.Device())
	}
	return &backend{client: c, desc: fmt.Sprintf("GPU worker %s (%s)", filepath.Base(path), c.Device())}, nil
}

// findGPUWorker looks for geca-cuda: $GECA_CUDA_WORKER, next to this
// executable, then on PATH.
func findGPUWorker() (string, error) {
	if p := os.Getenv("GECA_CUDA_WORKER"); p != "" {
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), gpuWorkerName)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath(gpuWorkerName)
	if err != nil {
		return "", errors.New("no GPU worker: " + gpuWorkerName + " is neither next to geca nor on PATH")
	}
	return p, nil
}

// use readies m for the backend: on this process's GPU, or uploaded to the
// worker (returned).
func (b *backend) use(m *engine.Model) (*remote.Model, error) {
	if b.client != nil {
		return b.client.LoadModel(m)
	}
	if b.accel != nil {
		m.SetAccelerator(b.accel)
	}
	return nil, nil
}

// note says where the command computes (and why not on the GPU, for auto).
func (b *backend) note() string {
	if b.why != "" {
		return "computing on the " + b.desc + " (" + b.why + ")"
	}
	return "computing on the " + b.desc
}

// status is the short form for the viewer's status line.
func (b *backend) status() string {
	if b.why != "" {
		return b.desc + " (GPU unavailable: " + b.why + ")"
	}
	return b.desc
}

func (b *backend) close() {
	if b != nil && b.client != nil {
		b.client.Close()
	}
}

// sampleRuns returns the constructor of runs of m on the backend: a
// sample.Sampler in this process, or a run in the worker.
func (b *backend) sampleRuns(m *engine.Model) (func(sample.Options) (sample.Stepper, error), error) {
	rm, err := b.use(m)
	if err != nil {
		return nil, err
	}
	if rm != nil {
		return func(o sample.Options) (sample.Stepper, error) {
			s, err := rm.NewSampler(o)
			if err != nil {
				return nil, err
			}
			return s, nil
		}, nil
	}
	return func(o sample.Options) (sample.Stepper, error) {
		s, err := sample.New(m, o)
		if err != nil {
			return nil, err
		}
		return s, nil
	}, nil
}
