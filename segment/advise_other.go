//go:build !linux

package segment

import "os"

func adviseRandom([]byte) {}

func adviseSequential([]byte) {}

func resident([]byte, int) bool { return true }

func adviseWillNeed([]byte, int, int) {}

func dataEnd(*os.File, int64) int64 { return -1 }

func adviseFileWillNeed(*os.File, int64, int64) {}
