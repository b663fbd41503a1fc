// The compose-go checker of tests/compose.rs: compose-go's dotenv parser and project loader
// (the code `docker compose` runs), built from the Go module proxy where Go is installed.
//
//	kpcheck dotenv FILE                    prints FILE's variables as JSON, as compose reads them
//	kpcheck config COMPOSE_FILE ENV_FILE…  loads the project as `docker compose config` does
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
)

func main() {
	switch os.Args[1] {
	case "dotenv":
		env, err := dotenv.Read(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(env)
	case "config":
		opts, err := cli.NewProjectOptions([]string{os.Args[2]}, cli.WithEnvFiles(os.Args[3:]...), cli.WithDotEnv)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		p, err := opts.LoadProject(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		b, _ := p.MarshalYAML()
		os.Stdout.Write(b)
	}
}
