// Progressive enhancements for the pages. Everything here is optional: forms and links work without it.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, function (match, key) {
      return key in values ? String(values[key]) : match;
    });
  }

  function readConfig() {
    var element = document.getElementById("upload-config");
    return element ? JSON.parse(element.textContent) : null;
  }

  function formatBytes(bytes) {
    var units = ["B", "KB", "MB", "GB", "TB"];
    var value = bytes;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return (unit === 0 ? value : value.toFixed(1)) + " " + units[unit];
  }

  function formatDuration(seconds, messages) {
    var rounded = Math.max(1, Math.round(seconds));
    if (rounded < 60) {
      return format(messages.seconds, { seconds: rounded });
    }
    var minutes = Math.round(rounded / 60);
    if (minutes < 60) {
      return format(messages.minutes, { minutes: minutes });
    }
    return format(messages.hours, { hours: Math.floor(minutes / 60), minutes: minutes % 60 });
  }

  function megapixels(pixels) {
    return (pixels / 1e6).toFixed(pixels < 1e7 ? 2 : 1);
  }

  // --- Upload form: chosen file, predicted output size and time -------------------------------------------

  var videoFacts = null; // {width, height, duration} of the chosen file, read by a hidden <video> element

  function formField(form, name) {
    return form.querySelector("[name=" + name + "]");
  }

  function chosenFile(form) {
    var input = formField(form, "video");
    return input && input.files && input.files.length ? input.files[0] : null;
  }

  function showPrediction(form, lines, isProblem) {
    var box = form.querySelector("#upload-prediction");
    if (!box) {
      return;
    }
    box.replaceChildren();
    lines.forEach(function (line) {
      var paragraph = document.createElement("p");
      paragraph.textContent = line;
      box.appendChild(paragraph);
    });
    box.classList.toggle("problem", Boolean(isProblem));
    box.hidden = lines.length === 0;
  }

  function largestFittingScale(width, height, limit) {
    for (var scale = 4; scale >= 2; scale -= 1) {
      if (width * scale * height * scale <= limit) {
        return scale;
      }
    }
    return null;
  }

  // Returns the message for a source or output size over the server's limits, or null when it fits.
  function sizeProblem(config, width, height, scale) {
    var messages = config.messages;
    if (width * height > config.maxSourcePixels) {
      return format(messages.sourceTooLarge, { width: width, height: height, limit: megapixels(config.maxSourcePixels) });
    }
    var outWidth = width * scale;
    var outHeight = height * scale;
    if (outWidth * outHeight <= config.maxOutputPixels) {
      return null;
    }
    var fitting = largestFittingScale(width, height, config.maxOutputPixels);
    var template = fitting ? messages.tooLarge : messages.tooLargeNoScale;
    return format(template, { width: outWidth, height: outHeight, limit: megapixels(config.maxOutputPixels), scale: fitting });
  }

  function estimateLine(config, variant, outPixels) {
    var rate = config.secondsPerOutputMegapixel[variant];
    if (rate === undefined || !isFinite(videoFacts.duration)) {
      return null;
    }
    var frames = Math.max(1, Math.round(videoFacts.duration * config.assumedFramesPerSecond));
    return format(config.messages.estimate, {
      duration: formatDuration(frames * (outPixels / 1e6) * rate, config.messages),
      frames: frames,
      fps: config.assumedFramesPerSecond,
    });
  }

  function predictionLines(form, config, file) {
    var messages = config.messages;
    var lines = [format(messages.chosenFile, { name: file.name, size: formatBytes(file.size) })];
    if (file.size > config.maxUploadBytes) {
      lines.push(format(messages.fileTooLarge, { size: formatBytes(file.size), limit: formatBytes(config.maxUploadBytes) }));
      return { lines: lines, problem: true };
    }
    if (videoFacts === null) {
      return { lines: lines, problem: false };
    }
    if (videoFacts.unreadable) {
      lines.push(messages.unreadable);
      return { lines: lines, problem: false };
    }

    var scale = parseInt(formField(form, "scale").value, 10) || 4;
    var problem = sizeProblem(config, videoFacts.width, videoFacts.height, scale);
    if (problem) {
      lines.push(problem);
      return { lines: lines, problem: true };
    }

    var outWidth = videoFacts.width * scale;
    var outHeight = videoFacts.height * scale;
    lines.push(format(messages.output, { width: outWidth, height: outHeight, megapixels: megapixels(outWidth * outHeight) }));
    var estimate = estimateLine(config, formField(form, "variant").value, outWidth * outHeight);
    if (estimate) {
      lines.push(estimate);
    }
    return { lines: lines, problem: false };
  }

  function updatePrediction(form) {
    var config = readConfig();
    var file = chosenFile(form);
    if (!config || !file) {
      showPrediction(form, [], false);
      return;
    }
    var result = predictionLines(form, config, file);
    showPrediction(form, result.lines, result.problem);
  }

  function readVideoFacts(form, file) {
    videoFacts = null;
    updatePrediction(form);
    var probe = document.createElement("video");
    var url = URL.createObjectURL(file);
    probe.preload = "metadata";
    probe.muted = true;
    probe.hidden = true;
    function finish(facts) {
      URL.revokeObjectURL(url);
      probe.removeAttribute("src");
      probe.remove();
      if (chosenFile(form) === file) {
        videoFacts = facts;
        updatePrediction(form);
      }
    }
    probe.addEventListener("loadedmetadata", function () {
      if (probe.videoWidth && probe.videoHeight) {
        finish({ width: probe.videoWidth, height: probe.videoHeight, duration: probe.duration });
      } else {
        finish({ unreadable: true });
      }
    });
    probe.addEventListener("error", function () {
      finish({ unreadable: true });
    });
    document.body.appendChild(probe);
    probe.src = url;
  }

  document.addEventListener("change", function (event) {
    var form = event.target.closest("#upload-form");
    if (!form) {
      return;
    }
    if (event.target.name === "video") {
      var file = chosenFile(form);
      if (file) {
        readVideoFacts(form, file);
      } else {
        videoFacts = null;
        updatePrediction(form);
      }
    } else if (event.target.name === "scale" || event.target.name === "variant") {
      updatePrediction(form);
    }
  });

  // --- Drag and drop onto the file field ---------------------------------------------------------------------

  function dropZone(event) {
    return event.target.closest ? event.target.closest(".drop-zone") : null;
  }

  ["dragenter", "dragover"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var zone = dropZone(event);
      if (zone) {
        event.preventDefault();
        zone.classList.add("dragging");
      }
    });
  });

  document.addEventListener("dragleave", function (event) {
    var zone = dropZone(event);
    if (zone && !zone.contains(event.relatedTarget)) {
      zone.classList.remove("dragging");
    }
  });

  document.addEventListener("drop", function (event) {
    var zone = dropZone(event);
    if (!zone) {
      return;
    }
    event.preventDefault();
    zone.classList.remove("dragging");
    var input = zone.querySelector("input[type=file]");
    if (input && event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }
  });

  // --- Upload progress (htmx 2 reports XHR upload progress as htmx:xhr:progress) ---------------------------

  function uploadProgress(form) {
    return form.querySelector("#upload-progress");
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.id === "upload-form") {
      var wrapper = uploadProgress(form);
      if (wrapper) {
        wrapper.hidden = false;
      }
      form.setAttribute("aria-busy", "true");
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        button.disabled = true;
      });
    }
  });

  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.detail.elt;
    if (!form || form.id !== "upload-form" || !event.detail.lengthComputable) {
      return;
    }
    var wrapper = uploadProgress(form);
    if (!wrapper) {
      return;
    }
    var percent = Math.floor((event.detail.loaded / event.detail.total) * 100);
    var bar = wrapper.querySelector("progress");
    bar.value = percent;
    wrapper.querySelector(".progress-label").textContent = format(readConfig().messages.uploading, { percent: percent });
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.id === "upload-form" && document.body.contains(form)) {
      // The form stays in place when the request failed (network error or a 4xx/5xx htmx does not swap).
      form.removeAttribute("aria-busy");
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        button.disabled = false;
      });
    }
  });

  // --- Announce status changes of polled fragments in the page's one status region -------------------------

  var knownStatuses = {};

  function collectStatuses(root) {
    var statuses = {};
    root.querySelectorAll("[data-task-status]").forEach(function (element) {
      statuses[element.dataset.taskId] = {
        status: element.dataset.taskStatus,
        label: element.dataset.taskStatusLabel,
        name: element.dataset.taskName,
      };
    });
    return statuses;
  }

  function announce(text) {
    var region = document.getElementById("messages");
    if (!region) {
      return;
    }
    region.querySelectorAll(".announcement").forEach(function (old) {
      old.remove();
    });
    var paragraph = document.createElement("p");
    paragraph.className = "message message-info announcement";
    paragraph.textContent = text;
    region.appendChild(paragraph);
  }

  function announceChanges() {
    var config = readConfig();
    var template = config ? config.messages.statusChanged : "{name}: {status}";
    var current = collectStatuses(document);
    var changes = [];
    Object.keys(current).forEach(function (taskId) {
      var before = knownStatuses[taskId];
      if (before && before.status !== current[taskId].status) {
        changes.push(format(template, { name: current[taskId].name, status: current[taskId].label }));
      }
    });
    knownStatuses = current;
    if (changes.length) {
      announce(changes.join(" · "));
      // The status panel listens for this event to refresh its task counts.
      document.body.dispatchEvent(new CustomEvent("task-status-changed", { bubbles: true }));
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    knownStatuses = collectStatuses(document);
  });
  document.addEventListener("htmx:afterSettle", announceChanges);

  // --- Before/after comparison slider -------------------------------------------------------------------------

  function updateComparison(slider) {
    var figure = slider.closest(".comparison");
    if (figure) {
      figure.style.setProperty("--split", slider.value + "%");
    }
  }

  document.addEventListener("input", function (event) {
    if (event.target.matches(".comparison input[type=range]")) {
      updateComparison(event.target);
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".comparison input[type=range]").forEach(updateComparison);
  });
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll(".comparison input[type=range]").forEach(updateComparison);
  });
})();
