"""Images for the course: the synthetic cue world, bundled photos and the cue-conflict stimuli."""
