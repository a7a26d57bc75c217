//go:build !linux

package segment

import "os"

func datasync(f *os.File) error { return f.Sync() }

func preallocate(*os.File, int64) error { return nil }

func adviseRandom([]byte) {}

func adviseSequential([]byte) {}

func resident([]byte, int) bool { return true }

func adviseWillNeed([]byte, int, int) {}

func dataEnd(*os.File, int64) int64 { return -1 }

func adviseFileWillNeed(*os.File, int64, int64) {}
