package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	gioapp "gioui.org/app"
	"gioui.org/op"
	"gioui.org/unit"
	"gioui.org/x/explorer"
)

// WindowOptions configure Run.
type WindowOptions struct {
	ExportDir string
	// Paused starts without playing (the default plays at once).
	Paused bool
	// StartError is shown in the error banner when the window opens (for
	// example a --ckpt that could not be loaded).
	StartError string
	// Loader opens the checkpoints and built-in models chosen in the window
	// (nil: Open).
	Loader Loader
	// VAE is a VAE folder or file to load at the start ("": none).
	VAE string
	// Demo starts in the demo preset.
	Demo bool
	// Recent is the file of the model picker's recent checkpoints
	// (DefaultRecentPath; "": none kept).
	Recent string
}

// RunWindow opens the viewer window on eng and blocks until the window closes.
// It must not run on the main goroutine: the caller runs gioapp.Main there.
func RunWindow(eng Engine, wo WindowOptions) error {
	ctrl, err := NewController(eng, StartSettings(eng))
	if err != nil {
		return err
	}
	w := new(gioapp.Window)
	w.Option(gioapp.Title("geca: "+eng.Name()), gioapp.Size(unit.Dp(1280), unit.Dp(800)), gioapp.MinSize(unit.Dp(900), unit.Dp(600)))
	loader := wo.Loader
	if loader == nil {
		loader = Open
	}
	r := NewRunner(eng, ctrl, loader, w.Invalidate)
	if wo.Recent != "" {
		r.UseRecent(wo.Recent)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	if wo.StartError != "" {
		r.Send(ShowError{Msg: wo.StartError})
	}
	if wo.VAE != "" {
		r.Send(LoadVAE{Path: wo.VAE})
	}
	if !wo.Paused {
		r.Send(Play{On: true})
	}
	ex := explorer.NewExplorer(w)
	ui := NewUI(r, Options{ExportDir: wo.ExportDir, Invalidate: w.Invalidate, ChooseFile: chooser(ex), Demo: wo.Demo})
	var ops op.Ops
	for {
		e := w.Event()
		ex.ListenEvents(e)
		switch e := e.(type) {
		case gioapp.DestroyEvent:
			return e.Err
		case gioapp.FrameEvent:
			gtx := gioapp.NewContext(&ops, e)
			ui.Layout(gtx)
			e.Frame(gtx.Ops)
		}
	}
}

// chooser turns the platform file dialog into a path. Dialogs that hand back
// a stream instead of a file are copied to a temporary file.
func chooser(ex *explorer.Explorer) func(exts ...string) (string, error) {
	return func(exts ...string) (string, error) {
		rc, err := ex.ChooseFile(exts...)
		if err != nil {
			if errors.Is(err, explorer.ErrUserDecline) {
				return "", errors.New("cancelled")
			}
			return "", err
		}
		defer rc.Close()
		if f, ok := rc.(*os.File); ok {
			return f.Name(), nil
		}
		tmp, err := os.CreateTemp("", "geca-open-*"+filepath.Ext(firstExt(exts)))
		if err != nil {
			return "", err
		}
		if _, err := io.Copy(tmp, rc); err != nil {
			tmp.Close()
			return "", fmt.Errorf("copying the chosen file: %w", err)
		}
		return tmp.Name(), tmp.Close()
	}
}

func firstExt(exts []string) string {
	if len(exts) > 0 {
		return exts[0]
	}
	return ""
}
