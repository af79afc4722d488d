package compose

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes a process of the rehearsal die with the test process, also when the test binary
// is killed or panics on its timeout (then no cleanup runs, and the process would go on).
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
