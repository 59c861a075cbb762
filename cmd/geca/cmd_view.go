//go:build !cuda

// The viewer is not part of GPU builds (-tags cuda): they run as workers
// on machines that may have no display libraries; the viewer reaches them
// through --device cuda or --engine.

package main

import (
	"fmt"
	"os"

	gioapp "gioui.org/app"

	"geca/app"
	"geca/internal/membudget"
)

func init() {
	c := &command{
		name:    "view",
		summary: "open the viewer: watch an image grow from one seeded pix-cell (the default command)",
		usage:   "[--ckpt FILE | --model fmnist|emoji] [--vae DIR] [--out DIR] [--paused] [--demo] [--max-memory SIZE] [--device cpu|cuda|auto | --engine HOST:PORT]",
	}
	c.run = func(args []string) error {
		fs := newFlags(c)
		mf := addModelFlags(fs, "checkpoint to open (.pt or .safetensors); default: a built-in model, --model")
		ckptPath := mf.ckpt
		vaePath := fs.String("vae", "", "VAE folder or file (AutoencoderKL or TAESD) that decodes the x₀ of latent models")
		out := fs.String("out", "", "folder for exports (PNG, GIF, .npy, CSV); default: the working directory")
		paused := fs.Bool("paused", false, "start paused instead of playing")
		demo := fs.Bool("demo", false, "start in the demo preset: the seed's growth, slowly, with captions (docs/viewer.md)")
		maxMem := fs.String("max-memory", "", "memory limit of the process (8G, 512M, 50%; default $GECA_MAX_MEMORY or 3/4 of the machine's); the history's budget starts at half of it, at most 1 GiB")
		dev := addDeviceFlags(fs, "auto")
		if err := parseFlags(fs, c, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usagef("unexpected argument %q\nusage: geca view %s", fs.Arg(0), c.usage)
		}
		if err := dev.check(); err != nil {
			return err
		}
		builtin, err := mf.builtin()
		if err != nil {
			return err
		}
		if err := membudget.SetFrom("--max-memory", *maxMem); err != nil {
			return usagef("%v", err)
		}
		quietWayland()
		be, err := dev.open()
		if err != nil {
			return err
		}
		defer be.close()
		fmt.Fprintf(os.Stderr, "geca view: %s\n", be.note())
		wo := app.WindowOptions{ExportDir: *out, Paused: *paused, Demo: *demo, VAE: *vaePath, Recent: app.DefaultRecentPath(),
			Loader: func(ref string) (app.Engine, error) { return be.adopt(app.Open(ref)) }}
		ref := *ckptPath
		if builtin != nil {
			ref = app.BuiltinPrefix + builtin.Name
		}
		eng, err := be.adopt(app.Open(ref))
		if err != nil {
			// the window opens anyway, on the default model, with the error shown
			fmt.Fprintf(os.Stderr, "geca view: %v\n", err)
			wo.StartError = err.Error() + " (showing the built-in model instead)"
			if eng, err = be.adopt(app.DefaultEngine()); err != nil {
				return err
			}
		}
		go func() {
			err := app.RunWindow(eng, wo)
			if err != nil {
				fmt.Fprintf(os.Stderr, "geca view: %v\n", err)
				os.Exit(1)
			}
			os.Exit(0)
		}()
		gioapp.Main()
		return nil
	}
	register(c)
}

// quietWayland keeps libwayland from printing "XDG_RUNTIME_DIR is invalid or
// not set" as an error on X11 desktops: without XDG_RUNTIME_DIR there is no
// Wayland session to connect to, and the window opens on X11 either way.
// Pointing WAYLAND_DISPLAY at a path that does not exist makes the Wayland
// attempt fail quietly.
func quietWayland() {
	if os.Getenv("XDG_RUNTIME_DIR") == "" && os.Getenv("WAYLAND_DISPLAY") == "" && os.Getenv("DISPLAY") != "" {
		os.Setenv("WAYLAND_DISPLAY", "/nonexistent/geca-no-wayland-session")
	}
}

// adopt moves an engine the viewer opened onto the chosen backend: the
// worker runs its samplers, or this process's GPU its updates; the status
// line says which.
func (be *backend) adopt(e app.Engine, err error) (app.Engine, error) {
	if err != nil {
		return nil, err
	}
	me, ok := e.(*app.ModelEngine)
	if !ok {
		return e, nil
	}
	if be.client != nil {
		return app.NewRemoteEngine(me, be.client, be.status())
	}
	if be.accel != nil {
		me.Model.SetAccelerator(be.accel)
	}
	me.DeviceInfo = be.status()
	return me, nil
}
