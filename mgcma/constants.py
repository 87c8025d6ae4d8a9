"""Constants shared by every part of the project."""

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "angry", "sad")  # IEMOCAP 4-class, excited→happy
NUM_EMOTIONS = len(EMOTIONS)

SAMPLE_RATE = 16_000  # every speech encoder here consumes 16 kHz mono float32
MAX_SECONDS = 30.0  # longest clip analysed; longer input is truncated with a notice
MAX_SAMPLES = int(SAMPLE_RATE * MAX_SECONDS)  # 480,000 samples

CHECKPOINT_FORMAT = "mgcma-checkpoint"
CHECKPOINT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
