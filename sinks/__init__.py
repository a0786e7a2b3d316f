"""Where generated frames go: video files now; the live runtime adds a window and a null sink."""
