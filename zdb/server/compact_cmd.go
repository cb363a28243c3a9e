package server

func cmdCompact(s *Server, c *client, args [][]byte) bool {
	c.w.Error("Command not supported")
	return true
}
