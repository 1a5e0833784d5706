"""The page ``GET /`` serves: try the model in a browser. One self-contained HTML document (no build
step, no CDN, no external file): a form for seed, count, output and format, a file picker for the
conditional model's images, and the clips the server returns, playing as GIF or MP4. It speaks the same
JSON contract as any client (POST /predictions)."""
import html
import json

from ..generation.inference import OUTPUTS

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tinyvideo-mx: %(title)s</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 56em; padding: 0 1em; color: #222; }
  fieldset { border: 1px solid #ccc; border-radius: 6px; padding: 0.8em 1em; }
  label { margin-right: 1.2em; }
  input[type=number] { width: 6em; }
  button { font-size: 1em; padding: 0.35em 1.2em; }
  #status { margin: 0.8em 0; min-height: 1.4em; }
  #status.error { color: #b00020; }
  #clips img, #clips video { image-rendering: pixelated; border: 1px solid #ddd; max-width: 100%%; }
  code { background: #f4f4f4; padding: 0 0.2em; }
</style>
</head>
<body>
<h1>tinyvideo-mx</h1>
<p>%(description)s Each request is a <code>POST /predictions</code>; the same seed gives the same clips as
<code>tinyvideo-mx sample --seed</code>.</p>
<form id="form">
<fieldset>
  <label %(unconditional_only)s>Seed <input id="seed" type="number" min="0" value="0"></label>
  <label %(unconditional_only)s>Clips <input id="n" type="number" min="1" max="%(max_n)d" value="%(default_n)d"></label>
  <label %(conditional_only)s>Images <input id="images" type="file" accept="image/*" multiple></label>
  <label>Output <select id="output">%(outputs)s</select></label>
  <label>Format <select id="format"><option value="gif">GIF</option><option value="mp4">MP4</option></select></label>
  <label>Scale <input id="scale" type="number" min="1" max="8" value="2"></label>
  <button id="generate" type="submit">Generate</button>
</fieldset>
</form>
<div id="status"></div>
<div id="clips"></div>
<script>
const CONDITIONAL = %(conditional)s;
const form = document.getElementById("form"), status = document.getElementById("status");
const clips = document.getElementById("clips");

function readAsBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.split(",", 2)[1]);
    reader.onerror = () => reject(new Error("could not read " + file.name));
    reader.readAsDataURL(file);
  });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const format = document.getElementById("format").value;
  const request = {outputs: [document.getElementById("output").value], format: format,
                   scale: Number(document.getElementById("scale").value)};
  if (CONDITIONAL) {
    const files = Array.from(document.getElementById("images").files);
    if (!files.length) { status.className = "error"; status.textContent = "choose one or more images"; return; }
    request.images = await Promise.all(files.map(readAsBase64));
  } else {
    request.seed = Number(document.getElementById("seed").value);
    request.n = Number(document.getElementById("n").value);
  }
  status.className = ""; status.textContent = "generating...";
  const started = performance.now();
  try {
    const response = await fetch("predictions", {method: "POST", headers: {"Content-Type": "application/json"},
                                                 body: JSON.stringify(request)});
    if (!response.ok) {
      const body = await response.json().catch(() => ({error: response.statusText}));
      throw new Error(response.status + ": " + body.error);
    }
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    clips.innerHTML = "";
    const media = document.createElement(format === "gif" ? "img" : "video");
    media.id = "result"; media.src = url; media.dataset.bytes = String(blob.size);
    if (format === "mp4") { media.autoplay = true; media.loop = true; media.muted = true; media.controls = true; }
    clips.appendChild(media);
    status.textContent = "done in " + ((performance.now() - started) / 1000).toFixed(2) + " s (" + blob.size + " bytes)";
    status.dataset.done = "1";
  } catch (error) {
    status.className = "error"; status.textContent = error.message;
  }
});
</script>
</body>
</html>
"""


def page_html(service):
    """The page for ``service`` (a SamplingService), as UTF-8 bytes."""
    conditional = service.config.is_conditional
    hidden = 'style="display:none"'
    title = "predict the future of an image" if conditional else "sample videos"
    description = ("Pick one or more images: the model predicts a 32-frame future for each." if conditional else
                   "Pick a seed and a number of clips: the generator turns each latent vector into a video.")
    return (_TEMPLATE % {
        "title": html.escape(title), "description": html.escape(description),
        "max_n": service.max_n, "default_n": min(4, service.max_n),
        "outputs": "".join(f'<option value="{o}">{o}</option>' for o in OUTPUTS),
        "conditional": json.dumps(conditional),
        "unconditional_only": hidden if conditional else "", "conditional_only": "" if conditional else hidden,
    }).encode("utf-8")
