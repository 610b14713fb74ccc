package server

import (
	_ "embed"
	"net/http"
)

// openAPI is the JSON API's OpenAPI 3.1 description; TestOpenAPIRoutes
// checks it against the routes.
//
//go:embed openapi.json
var openAPI []byte

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(openAPI)
}
