package projection_test

import (
	"testing"

	"github.com/batpak-go/batpak/projection"
	"github.com/batpak-go/batpak/projection/deadletterstest"
)

func TestDeadLettersConformance(t *testing.T) {
	t.Run("Memory", func(t *testing.T) {
		deadletterstest.Run(t, func(t *testing.T) deadletterstest.Opener {
			dl := projection.NewMemoryDeadLetters()
			return func() projection.DeadLetters { return dl }
		})
	})
	t.Run("File", func(t *testing.T) {
		deadletterstest.Run(t, func(t *testing.T) deadletterstest.Opener {
			dir := t.TempDir()
			return func() projection.DeadLetters {
				dl, err := projection.NewFileDeadLetters(dir, nil)
				if err != nil {
					t.Fatal(err)
				}
				return dl
			}
		})
	})
}
