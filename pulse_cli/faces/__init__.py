"""Faces in ordinary photos: find them (MTCNN), align them as FFHQ was aligned, paste faces back.

``detect.detect(image) -> list[Face]``, ``align.align(image, keypoints, size) -> Alignment`` and
``paste.paste(photo, [(face, alignment), ...], scale=None) -> image`` take float [3, H, W] RGB
images in [0, 1], as ``pulse_cli.images.read_image`` returns them. The modules, one idea each:
``weights`` (MTCNN's weights from the ``mtcnn`` wheel), ``lz4_frame`` and ``joblib_pickle`` (reading
them safely), ``networks`` (P/R/O-net in Paddle), ``boxes`` and ``sampling`` (the cascade's box
arithmetic and image sampling), ``detect``, ``planes`` (float resampling with Pillow), ``align``,
``paste``, ``annotate`` and ``extract`` (what ``pulse faces`` writes).
"""
