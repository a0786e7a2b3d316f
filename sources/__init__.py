"""Where speech comes from: live audio sources by URI (microphone, file, silence) and video files read frame by
frame. The sinks (:mod:`speech2vid.sinks`) are where frames go."""
