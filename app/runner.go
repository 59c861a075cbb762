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
	"geca/internal/membudget"
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
	// Restart shows a run from the start with Settings (nil: the settings
	// the controls started from), labelled Label in the branch list; the
	// earlier runs stay (Controller.Restart).
	Restart struct {
		Settings *Settings
		Label    string
	}
	SetSpeed struct{ UpdatesPerSecond float64 } // 0 = as fast as the engine goes
	Seek     struct{ K, U int }
	Select   struct{ I, J int } // I < 0 clears
	Stroke   struct {
		Cells  [][2]int
		Radius float64
		Mode   BrushMode
	}
	Undo      struct{}
	Compare   struct{ Mode CompareMode }
	SwitchRun struct{ ID int }
	SetActive struct{ Pane int }
	// LoadModel opens a checkpoint (or BuiltinPrefix and a built-in model's
	// name) as a new model; the models opened before stay, with their
	// history (SwitchModel), and a built-in model already open is switched
	// to rather than opened twice.
	LoadModel   struct{ Ckpt string }
	LoadVAE     struct{ Path string }
	SwitchModel struct{ ID int }
	// SetInfluence turns the seed-influence measurement on or off.
	SetInfluence struct{ On bool }
	// SetBudget sets the memory budget of the recorded history in bytes.
	SetBudget struct{ Bytes int64 }
	// ClearError dismisses the error banner.
	ClearError struct{}
	// ShowError puts a message in the error banner.
	ShowError struct{ Msg string }
)

// notice is an error that is a remark for the status line, not a banner.
type notice struct{ msg string }

func (n notice) Error() string { return n.msg }

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
func (c Restart) run(r *Runner) error {
	s := r.ctrl.base
	if c.Settings != nil {
		s = *c.Settings
	}
	label := c.Label
	if label == "" {
		label = "reset"
	}
	return r.compute(func() error { return r.ctrl.Restart(s, label) })
}
func (c SetSpeed) run(r *Runner) error { r.speed = c.UpdatesPerSecond; r.rate.reset(); return nil }
func (c Seek) run(r *Runner) error     { return r.compute(func() error { return r.ctrl.Seek(c.K, c.U) }) }
func (c Select) run(r *Runner) error   { r.ctrl.Select(c.I, c.J); return nil }
func (c Stroke) run(r *Runner) error {
	err := r.compute(func() error { return r.ctrl.Damage(c.Cells, c.Radius, c.Mode) })
	if errors.Is(err, ErrFinished) {
		return notice{err.Error()}
	}
	return err
}
func (Undo) run(r *Runner) error {
	if err := r.ctrl.Undo(); errors.Is(err, ErrNothingToUndo) {
		return notice{"nothing to undo"}
	} else {
		return err
	}
}
func (c Compare) run(r *Runner) error {
	return r.compute(func() error { return r.ctrl.SetCompare(c.Mode) })
}
func (c SwitchRun) run(r *Runner) error {
	return r.compute(func() error { return r.ctrl.SwitchRun(c.ID) })
}
func (c SetActive) run(r *Runner) error { r.ctrl.SetActive(c.Pane); return nil }
func (c Change) run(r *Runner) error {
	return r.compute(func() error { return r.ctrl.ChangeSetting(c) })
}
func (c SetInfluence) run(r *Runner) error { r.ctrl.SetInfluence(c.On); return nil }
func (c SetBudget) run(r *Runner) error {
	if c.Bytes < 1<<20 {
		return fmt.Errorf("memory budget %s is under 1 MB", membudget.Format(c.Bytes))
	}
	if l := membudget.Limit(); c.Bytes > l {
		return fmt.Errorf("memory budget %s is over the process's memory limit of %s (geca view --max-memory)",
			membudget.Format(c.Bytes), membudget.Format(l))
	}
	r.budget = c.Bytes
	for _, s := range r.sessions {
		s.ctrl.MaxBytes = c.Bytes
	}
	r.ctrl.evict()
	return notice{"memory budget " + membudget.Format(c.Bytes)}
}
func (ClearError) run(r *Runner) error  { r.err = ""; return nil }
func (c ShowError) run(r *Runner) error { r.err = c.Msg; return nil }

func (c LoadModel) run(r *Runner) error {
	if r.loader == nil {
		return errors.New("loading models is not available")
	}
	if strings.TrimSpace(c.Ckpt) == "" {
		return notice{"type a checkpoint path first"}
	}
	r.err = "" // a new attempt: the banner shows its own outcome only
	if name, ok := strings.CutPrefix(c.Ckpt, BuiltinPrefix); ok {
		// a built-in model is opened once; asking again goes back to it
		for _, s := range r.sessions {
			if me := modelEngine(s.eng); me != nil && strings.EqualFold(me.Builtin, name) {
				return SwitchModel{ID: s.id}.run(r)
			}
		}
	}
	r.status = "loading " + c.Ckpt + "…"
	r.publish(true)
	defer func() { r.status = "" }()
	var eng Engine
	err := r.compute(func() (err error) {
		eng, err = r.loader(c.Ckpt)
		return err
	})
	if err != nil {
		if strings.Contains(err.Error(), c.Ckpt) {
			return err
		}
		return fmt.Errorf("open %s: %w", c.Ckpt, err)
	}
	if me := modelEngine(eng); me != nil && me.VAE == nil && r.vae != nil && me.Model.Cfg.Latent {
		me.VAE, me.VAEName = r.vae, r.vaeName
	}
	s := AdaptSettings(r.ctrl.base, eng)
	var ctrl *Controller
	if err := r.compute(func() (err error) { ctrl, err = NewController(eng, s); return err }); err != nil {
		return fmt.Errorf("open %s: %w", c.Ckpt, err)
	}
	ctrl.MaxBytes = r.budget
	r.ctrl.Playing = false
	r.nextSession++
	r.sessions = append(r.sessions, &session{id: r.nextSession, eng: eng, ctrl: ctrl})
	r.ctrl, r.eng = ctrl, eng
	if r.recent != nil && !strings.HasPrefix(c.Ckpt, BuiltinPrefix) {
		if err := r.recent.Add(c.Ckpt); err != nil {
			return notice{"opened; the list of recent files was not saved: " + err.Error()}
		}
	}
	return nil
}

func (c LoadVAE) run(r *Runner) error {
	if r.vaeLoader == nil {
		return errors.New("loading a VAE is not available")
	}
	if strings.TrimSpace(c.Path) == "" {
		return notice{"type a VAE folder or file first"}
	}
	r.err = ""
	r.status = "loading VAE " + c.Path + "…"
	r.publish(true)
	defer func() { r.status = "" }()
	var d LatentDecoder
	err := r.compute(func() (err error) { d, err = r.vaeLoader(c.Path); return err })
	if err != nil {
		if strings.Contains(err.Error(), c.Path) {
			return err
		}
		return fmt.Errorf("VAE %s: %w", c.Path, err)
	}
	r.vae, r.vaeName = d, baseName(c.Path)
	me := modelEngine(r.eng)
	if me == nil || !me.Model.Cfg.Latent {
		return notice{fmt.Sprintf("VAE %s loaded: it decodes latent models; %s works in pixel space and needs none", baseName(c.Path), r.eng.Name())}
	}
	me.VAE, me.VAEName = d, r.vaeName
	return notice{"VAE " + baseName(c.Path) + " loaded: the VAE decode view is available (key D)"}
}

// UseRecent keeps the model picker's recent checkpoints in the file at
// path (RecentFiles), read now; call it before Run. A list that cannot be
// read is a remark, not an error: it starts again.
func (r *Runner) UseRecent(path string) {
	r.recent = &RecentFiles{Path: path}
	if err := r.recent.Load(); err != nil {
		r.say("recent files: " + err.Error())
	}
	r.publish(true)
}

func (c SwitchModel) run(r *Runner) error {
	for _, s := range r.sessions {
		if s.id == c.ID {
			r.ctrl.Playing = false
			r.ctrl, r.eng = s.ctrl, s.eng
			return nil
		}
	}
	return fmt.Errorf("no model %d", c.ID)
}

// modelEngine returns the ModelEngine behind eng (also inside a
// RemoteEngine), nil when there is none.
func modelEngine(eng Engine) *ModelEngine {
	switch e := eng.(type) {
	case *ModelEngine:
		return e
	case *RemoteEngine:
		return e.ModelEngine
	}
	return nil
}

// AdaptSettings are the settings a newly opened model starts with: its own
// defaults (StartSettings: its M, update rate and guidance), keeping the
// seed of the settings before and the labels that fit its classes.
func AdaptSettings(prev Settings, eng Engine) Settings {
	s := StartSettings(eng)
	s.Seed = prev.Seed
	cfg := eng.Config()
	var labels []int
	for _, l := range prev.Labels {
		if l < cfg.NumClasses {
			labels = append(labels, l)
		}
	}
	if len(labels) > 0 || cfg.NumClasses <= 1 {
		s.Labels = labels
	}
	return s
}

// Loader opens a checkpoint path, or BuiltinPrefix and a built-in model's
// name, as an Engine (Open).
type Loader func(ckpt string) (Engine, error)

// VAELoader opens a VAE folder or file.
type VAELoader func(path string) (LatentDecoder, error)

// session is one opened model and its history.
type session struct {
	id   int
	eng  Engine
	ctrl *Controller
}

// Runner owns the Controllers of the opened models on its own goroutine: it
// applies commands in order, steps while playing at the chosen speed, and
// publishes a Snapshot after every change.
type Runner struct {
	mu     sync.Mutex
	queue  []Command
	wake   chan struct{}
	latest atomic.Pointer[Snapshot]
	notify func()

	// owned by the runner goroutine
	ctrl        *Controller
	eng         Engine
	sessions    []*session
	nextSession int
	loader      Loader
	recent      *RecentFiles // checkpoints opened, for the model picker (nil: not kept)
	vaeLoader   VAELoader
	vae         LatentDecoder
	vaeName     string
	speed       float64
	budget      int64
	err         string
	note        string
	noteSeq     uint64
	status      string
	seq         uint64
	lastPub     time.Time
	dirty       bool // a change was not published (the throttle)
	lastUpdate  time.Duration
	rate        rateMeter

	busySince atomic.Int64 // unix nanos while computing, 0 when idle
}

// NewRunner makes a runner for ctrl. notify is called (from the runner
// goroutine) after each new snapshot, e.g. to invalidate the window.
func NewRunner(eng Engine, ctrl *Controller, loader Loader, notify func()) *Runner {
	r := &Runner{ctrl: ctrl, eng: eng, loader: loader, notify: notify, wake: make(chan struct{}, 1), speed: 8,
		budget: ctrl.MaxBytes, vaeLoader: LoadVAEFile}
	r.nextSession = 1
	r.sessions = []*session{{id: 1, eng: eng, ctrl: ctrl}}
	if me := modelEngine(eng); me != nil && me.VAE != nil {
		r.vae, r.vaeName = me.VAE, me.VAEName
	}
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

// Run processes commands until ctx ends; then it releases the runs of every
// model (a worker's memory).
func (r *Runner) Run(ctx context.Context) {
	defer r.close()
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
			r.details()
			r.publish(true)
		}
		if !r.ctrl.Playing {
			if r.dirty {
				r.publish(true) // the last play step may have been throttled
			}
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
			}
			next = time.Now()
			continue
		}
		if wait := time.Until(next); wait > 0 {
			if r.dirty {
				r.publish(true)
			}
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
		// the step that ends the run (or fails) stops the playing: show
		// it at once, whatever the throttle
		r.publish(!r.ctrl.Playing)
	}
}

// details fills in what the shown frames lack (attention of the selected
// cell, seed influence) while paused; playing frames are computed with it.
func (r *Runner) details() {
	if r.ctrl.Playing {
		return
	}
	if err := r.compute(r.ctrl.Details); err != nil && r.err == "" {
		r.err = err.Error()
	}
}

// playStep is one step while playing; unlike the StepUpdate command (a
// user's single step) it does not pause.
type playStep struct{}

func (playStep) run(r *Runner) error {
	err := r.compute(r.ctrl.StepUpdate)
	r.rate.tick(time.Now())
	return err
}

func (r *Runner) apply(c Command) {
	start := time.Now()
	err := c.run(r)
	switch c.(type) {
	case StepUpdate, playStep:
		r.lastUpdate = time.Since(start)
	case Play, TogglePlay:
		r.rate.reset()
	}
	for _, n := range r.ctrl.TakeNotes() {
		r.say(n)
	}
	var nt notice
	switch {
	case errors.As(err, &nt):
		r.say(nt.msg)
	case err != nil:
		r.err = err.Error()
		r.ctrl.Playing = false
	}
}

func (r *Runner) say(msg string) {
	r.note = msg
	r.noteSeq++
}

// publish builds a snapshot; when playing fast it is limited to about 120
// per second (force publishes regardless; a skipped one is published before
// the runner waits).
func (r *Runner) publish(force bool) {
	now := time.Now()
	if !force && now.Sub(r.lastPub) < 8*time.Millisecond {
		r.dirty = true
		return
	}
	r.dirty = false
	r.lastPub = now
	r.seq++
	r.latest.Store(r.buildSnapshot())
	if r.notify != nil {
		r.notify()
	}
}

// rateMeter measures the achieved play rate over the last two seconds.
type rateMeter struct {
	times []time.Time
}

func (m *rateMeter) reset() { m.times = m.times[:0] }

func (m *rateMeter) tick(t time.Time) {
	m.times = append(m.times, t)
	cut := 0
	for cut < len(m.times)-2 && t.Sub(m.times[cut]) > 2*time.Second {
		cut++
	}
	m.times = append(m.times[:0], m.times[cut:]...)
}

// perSecond is the rate of the ticks kept (0 with fewer than two).
func (m *rateMeter) perSecond() float64 {
	n := len(m.times)
	if n < 2 {
		return 0
	}
	d := m.times[n-1].Sub(m.times[0]).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(n-1) / d
}

// Snapshot is an immutable picture of the runner's state for the UI.
type Snapshot struct {
	Seq       uint64
	Cfg       engine.Config
	Model     string
	Untrained bool
	Builtin   string                                              // the built-in model's name ("" for a file)
	Opening   *Opening                                            // how the window first shows the current model
	Recent    []string                                            // checkpoints opened lately, newest first
	Preview   render.Preview                                      // latent -> RGB, nil for pixel models
	Decode    func(latent []float32, h, w int) ([]float32, error) // full decoder, nil if none
	Classes   []string                                            // class names, when the model knows them
	Stamp     ModelStamp                                          // what exports are stamped with
	Panes     []PaneSnap
	Active    int
	Runs      []RunInfo
	Models    []ModelInfo
	Settings  Settings // of the active pane's run
	Base      Settings // the settings the controls started from
	Compare   CompareMode
	Playing   bool
	Speed     float64
	// Achieved is the measured play rate in updates per second (0 when
	// not playing or not yet measured).
	Achieved float64
	Selected [2]int
	CanUndo  bool
	Error    string
	// Note is the runner's latest remark for the status line; NoteSeq
	// changes with every new one.
	Note    string
	NoteSeq uint64
	Status  string
	// LastUpdate is how long the last cell update took.
	LastUpdate time.Duration
	// Device says what computes the updates ("" when the engine does not say).
	Device string
	// History is the memory the recorded history holds, Budget its limit.
	History, Budget int64
	OverBudget      bool
	// Influence: the seed influence is measured.
	Influence bool
	VAE       string // the VAE's name, "" when none is loaded
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
	Health   Health // of the run's timeline up to its head
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

// ModelInfo describes one opened model for the model list.
type ModelInfo struct {
	ID      int
	Name    string
	Builtin string // the built-in model's name, "" for a file
	Path    string // the file, absolute ("" for a built-in model)
	Current bool
}

// ModelStamp names the model for export metadata.
type ModelStamp struct {
	Name, Hash string
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
		LastUpdate: r.lastUpdate, Note: r.note, NoteSeq: r.noteSeq, History: c.Bytes(), Budget: c.MaxBytes,
		OverBudget: c.OverBudget(), VAE: r.vaeName}
	if c.Playing {
		s.Achieved = r.rate.perSecond()
	}
	s.Influence = c.Influence()
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
	if me := modelEngine(r.eng); me != nil {
		s.Stamp = ModelStamp{Name: me.Source, Hash: me.Hash}
		s.Builtin, s.Opening = me.Builtin, me.Opening
	}
	for _, p := range c.panes {
		f, err := c.Frame(p.Run, p.K, p.U)
		if err != nil && r.err == "" {
			r.err = err.Error()
			s.Error = r.err
		}
		s.Panes = append(s.Panes, PaneSnap{Label: p.Label, RunID: p.Run.ID, RunLabel: p.Run.Label, Settings: p.Run.Settings,
			Timeline: c.Timeline(p.Run), K: p.K, U: p.U, Frame: f, AtHead: c.atHead(p), Health: timelineHealth(p.Run)})
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
	for _, m := range r.sessions {
		info := ModelInfo{ID: m.id, Name: m.eng.Name(), Current: m.ctrl == c}
		if me := modelEngine(m.eng); me != nil {
			info.Builtin, info.Path = me.Builtin, me.Path
		}
		s.Models = append(s.Models, info)
	}
	if r.recent != nil {
		s.Recent = r.recent.List()
	}
	return s
}

// timelineHealth is the health of run r's timeline: its own, and its
// ancestors' before the fork.
func timelineHealth(r *Run) Health {
	h := r.Health
	before := func(a, b [2]int) bool { return a[0] < b[0] || a[0] == b[0] && a[1] < b[1] }
	fork := [2]int{r.ForkIndex, r.ForkUpdate}
	for p := r.Parent; p != nil; p = p.Parent {
		ph := p.Health
		if ph.BigAt[0] >= 0 && before(ph.BigAt, fork) && (h.BigAt[0] < 0 || before(ph.BigAt, h.BigAt)) {
			h.BigAt = ph.BigAt
		}
		if ph.NaNAt[0] >= 0 && before(ph.NaNAt, fork) && (h.NaNAt[0] < 0 || before(ph.NaNAt, h.NaNAt)) {
			h.NaNAt = ph.NaNAt
		}
		h.MaxAbs = max(h.MaxAbs, ph.MaxAbs)
		fork = [2]int{p.ForkIndex, p.ForkUpdate}
	}
	return h
}

// close releases the runs of every opened model.
func (r *Runner) close() {
	for _, s := range r.sessions {
		s.ctrl.Close()
	}
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
	r.details()
	r.publish(true)
}
