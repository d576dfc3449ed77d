"""EfficiencyMetric on predictions of a toolbox's own model (no ``dyt_flops``):
an error naming the mmdyt model class to use, per task."""
import pytest

from mmdyt.evaluation.efficiency import EfficiencyMetric


def sample(task):
    if task == 'cls':
        from mmpretrain.structures import DataSample
        return DataSample()
    if task == 'seg':
        pytest.importorskip('mmseg')
        from mmseg.structures import SegDataSample
        return SegDataSample()
    pytest.importorskip('mmaction')
    from mmaction.structures import ActionDataSample
    return ActionDataSample()


@pytest.mark.parametrize('task, plain, dyt', [
    ('cls', 'ImageClassifier', 'DyTImageClassifier'),
    ('seg', 'EncoderDecoder', 'DyTEncoderDecoder'),
    ('video', 'Recognizer3D', 'DyTRecognizer3D')])
def test_prediction_of_a_plain_model_names_the_dyt_model(task, plain, dyt):
    metric = EfficiencyMetric()
    with pytest.raises(ValueError, match=rf"has no dyt_flops.*model.type='{dyt}' \(not the "
                       rf"toolbox's '{plain}'"):
        metric.process({}, [sample(task)])


def test_unknown_sample_names_the_three_models():
    with pytest.raises(ValueError, match="DyTImageClassifier.*DyTEncoderDecoder.*"
                       "DyTRecognizer3D"):
        EfficiencyMetric().process({}, [dict(img_path='x.png')])


def test_predictions_with_flops_are_measured():
    metric = EfficiencyMetric()
    metric.process({}, [dict(dyt_flops=2e9, dyt_rates=[0.5, 1.0])])
    assert metric.compute_metrics(metric.results) == dict(
        gflops=2.0, activation_rate=0.75, rate_layer0=0.5, rate_layer1=1.0)
