package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"geca/engine"
	"geca/render"
)

// Command is one request from the UI to the runner.
type Command interface {
	run(r *Runner) error
}

// Commands.
type (
	Play         struct{ On bool }
	TogglePlay   struct{}
	StepUpdate   struct{}
	StepTimestep struct{}
	// Reset restarts from Settings (nil: the current ones).
	Reset    struct{ Settings *Settings }
	SetSpeed struct{ UpdatesPerSecond float64 } // 0 = as fast as the engine goes
	Seek     struct{ K, U int }
	Select   struct{ I, J int } // I < 0 clears
	Stroke   struct {
		Cells  [][2]int
		Radius float64
		Mode   BrushMode
	}
	Undo    struct{}
	Compare struct {
		Field string
		Ms    []int
	}
	SwitchRun struct{ ID int }
	SetActive struct{ Pane int }
	LoadModel struct{ Ckpt, VAE string }
	// ClearError dismisses the error banner.
	ClearError struct{}
	// ShowError puts a message in the error banner.
	ShowError struct{ Msg string }
)

func (c Play) run(r *Runner) error {
	r.ctrl.Playing = c.On && !r.ctrl.AllDone()
	return nil
}
func (TogglePlay) run(r *Runner) error { return Play{On: !r.ctrl.Playing}.run(r) }
func (StepUpdate) run(r *Runner) error { r.ctrl.Playing = false; return r.compute(r.ctrl.StepUpdate) }
func (StepTimestep) run(r *Runner) error {
	r.ctrl.Playing = false
	return r.compute(r.ctrl.StepTimestep)
}
func (c Reset) run(r *Runner) error {
	s := r.ctrl.base
	if c.Settings != nil {
		s = *c.Settings
	}
	return r.compute(func() error { return r.ctrl.Reset(s) })
}
func (c SetSpeed) run(r *Runner) error { r.speed = c.UpdatesPerSecond; return nil }
func (c Seek) run(r *Runner) error     { return r.compute(func() error { return r.ctrl.Seek(c.K, c.U) }) }
func (c Select) run(r *Runner) error   { r.ctrl.Select(c.I, c.J); return nil }
func (c Stroke) run(r *Runner) error {
	return r.compute(func() error { return r.ctrl.Damage(c.Cells, c.Radius, c.Mode) })
}
func (Undo) run(r *Runner) error { return r.ctrl.Undo() }
func (c Compare) run(r *Runner) error {
	return r.compute(func() error { return r.ctrl.SetCompare(c.Field, c.Ms) })
}
func (c SwitchRun) run(r *Runner) error { return r.ctrl.SwitchRun(c.ID) }
func (c SetActive) run(r *Runner) error { r.ctrl.SetActive(c.Pane); return nil }
func (c Change) run(r *Runner) error {
	return r.compute(func() error { return r.ctrl.ChangeSetting(c) })
}
func (ClearError) run(r *Runner) error  { r.err = ""; return nil }
func (c ShowError) run(r *Runner) error { r.err = c.Msg; return nil }
func (c LoadModel) run(r *Runner) error {
	if r.loader == nil {
		return errors.New("loading models is not available")
	}
	r.status = "loading " + c.Ckpt + "…"
	r.publish(true)
	var eng Engine
	err := r.compute(func() (err error) {
		eng, err = r.loader(c.Ckpt, c.VAE)
		return err
	})
	if err != nil {
		r.status = ""
		if strings.Contains(err.Error(), c.Ckpt) {
			return err
		}
		return fmt.Errorf("open %s: %w", c.Ckpt, err)
	}
	s := AdaptSettings(r.ctrl.base, eng.Config())
	var ctrl *Controller
	if err := r.compute(func() (err error) { ctrl, err = NewController(eng, s); return err }); err != nil {
		r.status = ""
		return fmt.Errorf("open %s: %w", c.Ckpt, err)
	}
	r.ctrl, r.eng = ctrl, eng
	r.status = ""
	return nil
}

// AdaptSettings fits settings to a model: labels beyond its classes are
// dropped.
func AdaptSettings(s Settings, cfg engine.Config) Settings {
	var labels []int
	for _, l := range s.Labels {
		if l < cfg.NumClasses {
			labels = append(labels, l)
		}
	}
	s.Labels = labels
	return s
}

// Loader opens a checkpoint (and optionally a VAE folder) as an Engine.
type Loader func(ckpt, vae string) (Engine, error)

// Runner owns a Controller on its own goroutine: it applies commands in
// order, steps while playing at the chosen speed, and publishes a Snapshot
// after every change.
type Runner struct {
	mu     sync.Mutex
	queue  []Command
	wake   chan struct{}
	latest atomic.Pointer[Snapshot]
	notify func()

	// owned by the runner goroutine
	ctrl       *Controller
	eng        Engine
	loader     Loader
	speed      float64
	err        string
	status     string
	seq        uint64
	lastPub    time.Time
	lastUpdate time.Duration

	busySince atomic.Int64 // unix nanos while computing, 0 when idle
}

// NewRunner makes a runner for ctrl. notify is called (from the runner
// goroutine) after each new snapshot, e.g. to invalidate the window.
func NewRunner(eng Engine, ctrl *Controller, loader Loader, notify func()) *Runner {
	r := &Runner{ctrl: ctrl, eng: eng, loader: loader, notify: notify, wake: make(chan struct{}, 1), speed: 8}
	r.publish(true)
	return r
}

// Send queues a command; it never blocks.
func (r *Runner) Send(c Command) {
	r.mu.Lock()
	r.queue = append(r.queue, c)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Snapshot returns the latest published snapshot.
func (r *Runner) Snapshot() *Snapshot { return r.latest.Load() }

// Busy returns how long the current computation has been running (0 when idle).
func (r *Runner) Busy() time.Duration {
	t := r.busySince.Load()
	if t == 0 {
		return 0
	}
	return time.Since(time.Unix(0, t))
}

func (r *Runner) compute(f func() error) error {
	r.busySince.Store(time.Now().UnixNano())
	defer r.busySince.Store(0)
	return f()
}

// Run processes commands until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	next := time.Now()
	for {
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		cmds := r.queue
		r.queue = nil
		r.mu.Unlock()
		for _, c := range cmds {
			r.apply(c)
		}
		if len(cmds) > 0 {
			r.publish(true)
		}
		if !r.ctrl.Playing {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
			}
			next = time.Now()
			continue
		}
		if wait := time.Until(next); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-r.wake:
				t.Stop()
				continue // commands first; the step comes when its time is due
			case <-t.C:
			}
		}
		start := time.Now()
		r.apply(playStep{})
		if r.speed > 0 {
			next = start.Add(time.Duration(float64(time.Second) / r.speed))
		} else {
			next = time.Now()
		}
		r.publish(false)
	}
}

// playStep is one step while playing; unlike the StepUpdate command (a
// user's single step) it does not pause.
type playStep struct{}

func (playStep) run(r *Runner) error { return r.compute(r.ctrl.StepUpdate) }

func (r *Runner) apply(c Command) {
	start := time.Now()
	err := c.run(r)
	switch c.(type) {
	case StepUpdate, playStep:
		r.lastUpdate = time.Since(start)
	}
	if err != nil {
		r.err = err.Error()
		r.ctrl.Playing = false
	}
}

// Step runs one command synchronously, for tests and for callers without a
// goroutine; it publishes a snapshot and returns the command's error.
func (r *Runner) Step(c Command) error {
	err := c.run(r)
	if err != nil {
		r.err = err.Error()
	}
	r.publish(true)
	return err
}

// publish builds a snapshot; when playing fast it is limited to about 120
// per second (force publishes regardless).
func (r *Runner) publish(force bool) {
	now := time.Now()
	if !force && now.Sub(r.lastPub) < 8*time.Millisecond {
		return
	}
	r.lastPub = now
	r.seq++
	r.latest.Store(r.buildSnapshot())
	if r.notify != nil {
		r.notify()
	}
}

// Snapshot is an immutable picture of the runner's state for the UI.
type Snapshot struct {
	Seq       uint64
	Cfg       engine.Config
	Model     string
	Untrained bool
	Preview   render.Preview                                      // latent -> RGB, nil for pixel models
	Decode    func(latent []float32, h, w int) ([]float32, error) // full decoder, nil if none
	Classes   []string                                            // class names, when the model knows them
	Panes     []PaneSnap
	Active    int
	Runs      []RunInfo
	Settings  Settings // of the active pane's run
	Base      Settings // of the main run
	Compare   string
	Playing   bool
	Speed     float64
	Selected  [2]int
	CanUndo   bool
	Error     string
	Status    string
	// LastUpdate is how long the last cell update took.
	LastUpdate time.Duration
	// Device says what computes the updates ("" when the engine does not say).
	Device string
}

// PaneSnap is one pane: its run's timeline and playhead.
type PaneSnap struct {
	Label    string
	RunID    int
	RunLabel string
	Settings Settings
	Timeline []*StepRecord
	K, U     int
	Frame    *Frame
	AtHead   bool
}

// RunInfo describes one run for the branch list.
type RunInfo struct {
	ID, ParentID int
	Label        string
	ForkIndex    int
	Damage       bool
	Steps        int // timesteps recorded on its timeline
	Current      bool
}

// Untrained engines say so in the status line.
type untrainedMarker interface{ Untrained() bool }

// Previewer engines show latents through a cheap preview.
type previewer interface {
	Preview() render.Preview
}

// Decoder engines can decode latents fully (slow).
type decoder interface {
	Decoder() func(latent []float32, h, w int) ([]float32, error)
}

func (r *Runner) buildSnapshot() *Snapshot {
	c := r.ctrl
	s := &Snapshot{Seq: r.seq, Cfg: c.cfg, Model: r.eng.Name(), Active: c.active, Settings: c.Settings(), Base: c.base,
		Compare: c.compare, Playing: c.Playing, Speed: r.speed, CanUndo: c.CanUndo(), Error: r.err, Status: r.status,
		LastUpdate: r.lastUpdate}
	s.Selected[0], s.Selected[1] = c.Selected()
	if u, ok := r.eng.(untrainedMarker); ok {
		s.Untrained = u.Untrained()
	}
	if p, ok := r.eng.(previewer); ok {
		s.Preview = p.Preview()
	}
	if d, ok := r.eng.(decoder); ok {
		s.Decode = d.Decoder()
	}
	if n, ok := r.eng.(interface{ ClassNames() []string }); ok {
		s.Classes = n.ClassNames()
	}
	if d, ok := r.eng.(interface{ Device() string }); ok {
		s.Device = d.Device()
	}
	for i, p := range c.panes {
		f, err := c.Frame(p.Run, p.K, p.U)
		if err != nil && r.err == "" {
			r.err = err.Error()
			s.Error = r.err
		}
		s.Panes = append(s.Panes, PaneSnap{Label: p.Label, RunID: p.Run.ID, RunLabel: p.Run.Label, Settings: p.Run.Settings,
			Timeline: c.Timeline(p.Run), K: p.K, U: p.U, Frame: f, AtHead: c.atHead(c.panes[i])})
	}
	cur := c.panes[c.active].Run
	for _, run := range c.runs {
		info := RunInfo{ID: run.ID, Label: run.Label, ForkIndex: run.ForkIndex, Damage: run.Damage, Current: run == cur,
			Steps: run.ForkIndex + len(run.steps)}
		if run.Parent != nil {
			info.ParentID = run.Parent.ID
		}
		s.Runs = append(s.Runs, info)
	}
	return s
}

// drain applies the queued commands now, on the caller's goroutine (for
// tests and headless drivers that do not start Run).
func (r *Runner) drain() {
	r.mu.Lock()
	cmds := r.queue
	r.queue = nil
	r.mu.Unlock()
	for _, c := range cmds {
		r.apply(c)
	}
	r.publish(true)
}
