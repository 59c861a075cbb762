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
)

func init() {
	c := &command{
		name:    "view",
		summary: "open the viewer: watch an image grow from one seeded pix-cell (the default command)",
		usage:   "[--ckpt FILE] [--vae DIR] [--out DIR] [--paused] [--device cpu|cuda|auto | --engine HOST:PORT]",
	}
	c.run = func(args []string) error {
		fs := newFlags(c)
		ckptPath := fs.String("ckpt", "", "checkpoint to open (.pt or .safetensors); default: the built-in Fashion-MNIST model")
		vaePath := fs.String("vae", "", "VAE folder or .safetensors for full decoding of latent models")
		out := fs.String("out", "", "folder for exports (PNG, GIF, .npy); default: the working directory")
		paused := fs.Bool("paused", false, "start paused instead of playing")
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
		be, err := dev.open()
		if err != nil {
			return err
		}
		defer be.close()
		fmt.Fprintf(os.Stderr, "geca view: %s\n", be.note())
		wo := app.WindowOptions{ExportDir: *out, Paused: *paused,
			Loader: func(ckpt, vae string) (app.Engine, error) { return be.adopt(app.LoadEngine(ckpt, vae)) }}
		var eng app.Engine
		if *ckptPath != "" {
			e, err := be.adopt(app.LoadEngine(*ckptPath, *vaePath))
			if err != nil {
				// the window opens anyway, on the built-in model, with the error shown
				fmt.Fprintf(os.Stderr, "geca view: %v\n", err)
				wo.StartError = err.Error() + " (showing the built-in model instead)"
			} else {
				eng = e
			}
		}
		if eng == nil {
			e, err := be.adopt(app.DefaultEngine())
			if err != nil {
				return err
			}
			eng = e
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
