package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"

	"tote/session/redisstore/redistest"
)

// serveHello is the baseline: Fiber's hello world with its default
// configuration, until SIGTERM or SIGINT.
func serveHello(addr string) error {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/", func(c *fiber.Ctx) error { return c.SendString("Hello, World!") })
	return serve(app, addr)
}

// serve serves app on addr until SIGTERM or SIGINT.
func serve(app *fiber.App, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); app.ShutdownWithTimeout(5 * time.Second) }()
	return app.Listener(ln)
}

// proc is a child process: tote, the hello world or redis-server.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan error
}

// start starts bin with args and env (added to a minimal environment),
// with its output going to logFile.
func start(name, bin string, args, env []string, logFile string) (*proc, error) {
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the benchmark
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); log.Close() }()
	return p, nil
}

// stop asks the process to end (SIGTERM) and kills it after 10 seconds.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has ended, and how.
func (p *proc) exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP waits until url answers 200, for at most 15 seconds, or until
// p exits.
func waitHTTP(p *proc, url string) error {
	deadline := time.Now().Add(15 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		if done, err := p.exited(); done {
			return fmt.Errorf("%s exited before it answered (%v)", p.name, err)
		}
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer %s within 15s (%v)", p.name, url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startRedis starts a private redis-server without persistence on a free
// loopback port and waits until it answers PING.
func startRedis(dir, logFile string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	_, port, _ := net.SplitHostPort(addr)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", err
	}
	p, err := start("redis-server", bin, []string{
		"--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "yes", "--daemonize", "no",
	}, nil, logFile)
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if reply, err := redisDo(addr, "PING"); err == nil && reply == "PONG" {
			return p, addr, nil
		}
		if done, err := p.exited(); done || time.Now().After(deadline) {
			p.stop()
			return nil, "", fmt.Errorf("redis-server on %s did not start (%v); see %s", addr, err, logFile)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisDo sends one command on a connection of its own (redistest.Do).
func redisDo(addr string, args ...string) (string, error) { return redistest.Do(addr, args...) }

// commandCalls returns the calls of each command from INFO commandstats,
// leaving out INFO itself (redistest.CommandCalls).
func commandCalls(addr string) (map[string]int64, error) { return redistest.CommandCalls(addr) }

// commandsSent returns the commands that Redis ran between two snapshots of
// commandCalls: what clients sent, when no script ran.
func commandsSent(before, after map[string]int64) int64 {
	var total int64
	for name, n := range after {
		total += n - before[name]
	}
	return total
}

// roundTrips returns the commands that clients sent between two snapshots of
// commandCalls. Commands that a script runs inside Redis show in
// commandstats too: each run of tote's compare-and-set script (EVALSHA, or
// EVAL) makes one GET and, when it writes, one SET, which tote never sends
// itself. Those are subtracted.
func roundTrips(before, after map[string]int64) int64 {
	total := commandsSent(before, after)
	scripts := after["evalsha"] - before["evalsha"] + after["eval"] - before["eval"]
	sets := after["set"] - before["set"]
	return total - scripts - sets
}
