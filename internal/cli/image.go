package cli

import "github.com/spf13/cobra"

// addImageCommands adds the image commands: top-level docker verbs
// (images, pull, push, …) and the "image" group.
func addImageCommands(root *cobra.Command, g *globals) {
	image := &cobra.Command{Use: "image", Short: "Manage images"}
	root.AddCommand(image)
	addLocalImageCommands(root, image, g)
	addArchiveCommands(root, image, g)
	addRegistryClientCommands(root, image, g)
	root.AddCommand(newSystemCmd(g))
}
