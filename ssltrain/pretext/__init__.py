"""What the pretext and reconstruction tasks do to images: patches and tiles, permutation
sets, masks, corruptions, and colour spaces (Lab and its quantised ab bins)."""
