"""Running a trained policy: `Policy` (checkpoint -> normalised chunks, `policy`), the receding-
horizon runner and its configuration (`runner`), the background-thread runner (`async_runner`),
the robot's loop around it (perceived goals, safety filter: `perceived`) and the controller a
skill runs, policy or scripted expert (`controllers`)."""
