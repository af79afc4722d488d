package main

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes a service process die with the test process, also when the test binary
// is killed or panics on its timeout (then no cleanup runs, and the service would go on).
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
