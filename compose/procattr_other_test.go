//go:build !linux

package compose

import "os/exec"

// dieWithTest: only Linux can tie a child's life to its parent's (Pdeathsig).
func dieWithTest(*exec.Cmd) {}
