"""Everything that touches video frames or torch, with no Django import.

`gpu.api.upscale_video` is the entry point; `gpu.params` defines the data the web app passes in and gets back.
Importing this package, `gpu.params`, `gpu.video` or `gpu.api` never imports torch.
"""
